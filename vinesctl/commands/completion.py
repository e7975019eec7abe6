"""`vinesctl completion bash|zsh|fish`: print the shell completion script.

The scripts are Click's: the shell calls back into vinesctl (`_VINESCTL_COMPLETE=..._complete`)
for every TAB, so completions always follow the installed command tree. The copies in
`completions/` are generated from this output, and a test keeps them equal.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
PROG = "vinesctl"
COMPLETE_VAR = "_VINESCTL_COMPLETE"


def profile_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Shell completion for profile names, read from the profiles file."""
    from click.shell_completion import CompletionItem

    from vinesctl.profiles import ProfileStore

    try:
        store = ProfileStore.load()
    except Exception:  # a broken file must not break the shell
        return []
    return [
        CompletionItem(name, help=store.profiles[name].jid)
        for name in store.names()
        if name.startswith(incomplete)
    ]


def script(shell: str) -> str:
    """The completion script for `shell`, exactly as Click generates it for vinesctl."""
    from click.shell_completion import get_completion_class

    from vinesctl.cli import cli

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - SHELLS are all built into Click
        raise click.BadParameter(f"unsupported shell {shell}")
    return cls(cli, {}, PROG, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash:  eval "$(vinesctl completion bash)"      (in ~/.bashrc)
    zsh:   eval "$(vinesctl completion zsh)"       (in ~/.zshrc)
    fish:  vinesctl completion fish > ~/.config/fish/completions/vinesctl.fish
    """
    text = script(shell)
    click.echo(text if text.endswith("\n") else text + "\n", nl=False)
