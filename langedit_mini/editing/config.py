"""What an editing session runs: ``EditConfig``, the method, its layers and its own settings.

``editing.defaults.default_config`` fills one in from a model's defaults; the settings dataclass
belongs to the method (``editing.methods``, ``editing.ft``), so that a setting a method does not
have cannot be given to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from langedit_mini.editing.methods import settings_with
from langedit_mini.editing.registry import get_method
from langedit_mini.model.architecture import Architecture, check_layer, detect_architecture
from langedit_mini.model.values import ValueSettings


@dataclass
class EditConfig:
    """What an editing session runs: the method, the edited layers, and the method's own settings."""

    method: str  # one of METHODS (registry.py)
    layers: tuple[int, ...]  # edited layers, ascending; the last is L (target values)
    values: ValueSettings = field(default_factory=ValueSettings)  # target values z (closed-form methods)
    settings: object = None  # the method's settings (methods.py, ft.py); None: its defaults
    seed: int = 0

    def __post_init__(self):
        if self.settings is None:
            self.settings = settings_with(get_method(self.method), {})

    @property
    def editing_method(self):
        return get_method(self.method)

    def validate(self, model=None, architecture: Architecture | None = None) -> EditConfig:
        method = get_method(self.method)
        if not isinstance(self.settings, method.settings_type):
            raise ValueError(f"{self.method} takes {method.settings_type.__name__}, got {type(self.settings).__name__}")
        if not self.layers or list(self.layers) != sorted(set(self.layers)):
            raise ValueError(f"layers must be a non-empty ascending tuple of distinct layers, got {self.layers!r}")
        self.settings.validate()
        self.values.validate()
        if model is not None:
            for layer in self.layers:
                check_layer(model, architecture or detect_architecture(model), layer)
        return self
