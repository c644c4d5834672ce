"""Plugin CLI commands (``register_commands``) and the guard that turns a plugin's unexpected
exception into one line naming it (:class:`plugin_call`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avseg.errors import one_line
from avseg.plugin_registration import call_per_plugin
from avseg.registry_entries import BrokenPlugin

if TYPE_CHECKING:
    from avseg.registry import Registry


class plugin_call:
    """``with plugin_call("what failed"):`` turns a plugin's unexpected exception (a dataset reader,
    a command) into one :class:`ComponentFailed` line naming it, like a component's
    (``AVSEG_DEBUG=1`` keeps the traceback)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        import os

        from avseg.errors import AvsegError, ComponentFailed

        if exc is None or isinstance(exc, AvsegError) or not isinstance(exc, Exception) or os.environ.get("AVSEG_DEBUG"):
            return
        if hasattr(exc, "exit_code") and type(exc).__module__.split(".")[0] in ("click", "typer"):
            return  # click's own Exit/usage errors: the CLI prints them
        raise ComponentFailed(f"{self.what}: {one_line(exc)} (AVSEG_DEBUG=1 shows the traceback)") from exc


def _guard_command(cmd: Any, plugin: str, provider: str) -> None:
    """Wrap a plugin command (and its subcommands) so that an exception is one line naming it."""
    import functools

    callback = getattr(cmd, "callback", None)
    if callable(callback):
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            with plugin_call(f"command {cmd.name!r} of plugin {plugin!r} (from {provider}) failed"):
                return callback(*args, **kwargs)

        cmd.callback = run
    for sub in getattr(cmd, "commands", {}).values():
        _guard_command(sub, plugin, provider)


def check_plugin_commands(reg: Registry) -> None:
    """Run every plugin's ``register_commands`` on a scratch group (once per registry), so that a
    plugin whose hook raises is listed as broken by ``avseg plugins`` too."""
    if not reg.commands_checked:
        import typer

        add_plugin_commands(typer.main.get_group(typer.Typer()), reg)


def add_plugin_commands(group: Any, reg: Registry) -> None:
    """Call ``register_commands`` with a fresh Typer app per plugin and add what each adds to the
    click ``group``; a command that would replace an existing one marks the plugin broken."""
    import typer

    taken = set(group.commands)

    class PluginApp(typer.Typer):
        plugin = provider = version = ""

        def __str__(self) -> str:  # what AVSEG_TRACE_PLUGINS shows
            return f"<typer app for plugin {self.plugin!r} ({self.provider} {self.version})>"

    def kwargs(plugin: str, provider: str, version: str) -> dict[str, Any]:
        app = PluginApp(no_args_is_help=True)
        app.plugin, app.provider, app.version = plugin, provider, version
        apps[plugin] = app
        return {"app": app}

    apps: dict[str, typer.Typer] = {}
    before = len(reg.broken)
    call_per_plugin(reg, "register_commands", kwargs)
    if reg.commands_checked:  # run before (see check_plugin_commands): keep each failure once
        old = {(b.plugin, b.reason) for b in reg.broken[:before]}
        reg.broken[before:] = [b for b in reg.broken[before:] if (b.plugin, b.reason) not in old]
    reg.commands_checked = True
    broken = {b.plugin for b in reg.broken}
    for plugin, app in apps.items():
        if plugin in broken or not (app.registered_commands or app.registered_groups):
            continue
        commands = typer.main.get_group(app).commands
        clash = sorted(set(commands) & taken)
        if clash:
            reg.broken.append(BrokenPlugin(plugin, reg.plugin_of(plugin)[0],
                                           f"register_commands: command {clash[0]!r} already exists"))
            continue
        for name, cmd in commands.items():
            _guard_command(cmd, plugin, reg.plugin_of(plugin)[0])
            group.add_command(cmd, name)
        taken |= set(commands)
