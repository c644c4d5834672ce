"""The registry is split into modules named for what they hold; every name plugins, docs and the
rest of avseg import from ``avseg.registry`` still comes from there, and is the same object."""

from __future__ import annotations

import importlib

import avseg.registry as registry

#: what was importable from avseg.registry before the split (its __all__ and the names used elsewhere)
BEFORE = ("BUNDLED", "DEFAULT_PLUGINS", "KINDS", "BrokenPlugin", "Extension", "Metric", "Registration", "Registry",
          "add_plugin_commands", "install_hint", "load_registry", "make_plugin_manager", "plugin_call",
          "check_plugin_commands", "load_default_plugins", "load_entry_points", "register_plugin", "call_per_plugin",
          "RegisterCallback", "PluginRefused", "normalise_dist", "split_ref", "ENTRY_POINT_GROUP", "METRIC_PER")

HOME = {
    "avseg.registry_entries": ("BrokenPlugin", "Extension", "Metric", "Registration", "normalise_dist", "split_ref"),
    "avseg.plugin_loading": ("ENTRY_POINT_GROUP", "load_default_plugins", "load_entry_points", "make_plugin_manager",
                             "register_plugin"),
    "avseg.plugin_registration": ("METRIC_PER", "PluginRefused", "RegisterCallback", "call_per_plugin"),
    "avseg.plugin_commands": ("add_plugin_commands", "check_plugin_commands", "plugin_call"),
}


def test_every_name_is_still_importable_from_avseg_registry() -> None:
    missing = [n for n in BEFORE if not hasattr(registry, n)]
    assert not missing
    assert set(registry.__all__) <= set(BEFORE) | {"Registry"}
    assert all(hasattr(registry, n) for n in registry.__all__)


def test_the_reexports_are_the_objects_of_the_modules_that_hold_them() -> None:
    for module, names in HOME.items():
        mod = importlib.import_module(module)
        for name in names:
            assert getattr(registry, name) is getattr(mod, name), f"{name} of {module}"


def test_a_registry_built_through_the_split_modules_works() -> None:
    reg = registry.load_registry(entry_points=False)
    assert not reg.broken
    assert reg.lookup("filter", "nms").provider == registry.BUNDLED
    assert "s4" in reg.datasets and "miou" in reg.metrics
