"""Settings: validated, hashable training configurations (imports nothing else of phenolab)."""

from phenolab.settings._components import (
    MEASURES,
    MODELS,
    MODULAR_OPS,
    TASKS,
    Component,
    DigitsTask,
    LinearModel,
    LinearRegressionTask,
    MlpModel,
    Mnist1dTask,
    ModularTask,
    RandomFeaturesModel,
    TransformerModel,
    register_model_config,
    register_task_config,
)
from phenolab.settings._named import NAMED_SETTINGS, named_setting, register_setting, resolve_setting
from phenolab.settings._parse import (
    SettingError,
    apply_overrides,
    load_setting_file,
    parse_assignments,
    parse_seeds,
    parse_value,
    validate_setting,
)
from phenolab.settings._setting import EvalConfig, MeasureSpec, OptimConfig, PruneConfig, ScheduleConfig, Setting

__all__ = [
    "MEASURES", "MODELS", "MODULAR_OPS", "NAMED_SETTINGS", "TASKS", "Component", "DigitsTask",
    "EvalConfig", "LinearModel", "LinearRegressionTask", "MeasureSpec", "MlpModel", "Mnist1dTask",
    "ModularTask", "OptimConfig", "PruneConfig", "RandomFeaturesModel", "ScheduleConfig", "Setting", "SettingError",
    "TransformerModel", "apply_overrides", "load_setting_file", "named_setting", "parse_assignments",
    "parse_seeds", "parse_value", "register_model_config", "register_setting", "register_task_config",
    "resolve_setting", "validate_setting",
]
