"""Settings: validated, hashable training configurations (imports nothing else of phenolab)."""

from phenolab.settings._components import (
    ENSEMBLE_MEASURES,
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
from phenolab.settings._messages import did_you_mean, unknown_name
from phenolab.settings._named import NAMED_SETTINGS, named_setting, register_setting, resolve_setting
from phenolab.settings._parse import (
    SettingError,
    apply_overrides,
    check_overrides,
    check_seeds,
    load_setting_file,
    parse_assignments,
    parse_seeds,
    parse_value,
    validate_setting,
)
from phenolab.settings._setting import (
    EnsembleConfig,
    EvalConfig,
    MeasureSpec,
    OptimConfig,
    PruneConfig,
    ScheduleConfig,
    Setting,
)

__all__ = [
    "ENSEMBLE_MEASURES", "MEASURES", "MODELS", "MODULAR_OPS", "NAMED_SETTINGS", "TASKS", "Component", "DigitsTask",
    "EnsembleConfig", "EvalConfig", "LinearModel", "LinearRegressionTask", "MeasureSpec", "MlpModel",
    "Mnist1dTask", "ModularTask", "OptimConfig", "PruneConfig", "RandomFeaturesModel", "ScheduleConfig", "Setting",
    "SettingError",
    "TransformerModel", "apply_overrides", "check_overrides", "check_seeds", "did_you_mean",
    "load_setting_file", "named_setting", "parse_assignments",
    "parse_seeds", "parse_value", "register_model_config", "register_setting", "register_task_config",
    "resolve_setting", "unknown_name", "validate_setting",
]
