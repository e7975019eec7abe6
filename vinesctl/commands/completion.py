"""`vinesctl completion bash|zsh|fish`: print the shell completion script.

The shell calls back into vinesctl (`_VINESCTL_COMPLETE=..._complete`) for every TAB, so
completions always follow the installed command tree. bash and zsh use Click's scripts; fish uses
our own script and answer format (below). The files in `completions/` are thin loaders that run
`vinesctl completion SHELL` when the shell loads them, so they never go stale.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
PROG = "vinesctl"


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


# Our fish script: Click 8.4.0's splits each answer on a newline written unescaped into the
# script, which fish reads as a line break, so no completion works. One answer per line,
# `type<TAB>value<TAB>help`, is fish's own convention for descriptions and does not depend on
# how a Click release formats its answers.
FISH_SOURCE = """\
function %(complete_func)s
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \\
        COMP_CWORD=(commandline -t) %(prog_name)s)
    for completion in $response
        set -l fields (string split -m 2 \\t -- $completion)
        switch $fields[1]
            case dir
                __fish_complete_directories $fields[2]
            case file
                __fish_complete_path $fields[2]
            case plain
                printf '%%s\\t%%s\\n' $fields[2] $fields[3]
        end
    end
end

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)"
"""


def register_shells() -> None:
    """Install our fish completion class in Click (called only when a shell asks to complete,
    so a normal start does not import click.shell_completion)."""
    from click.shell_completion import CompletionItem, FishComplete, add_completion_class

    class Fish(FishComplete):
        source_template = FISH_SOURCE

        def format_completion(self, item: CompletionItem) -> str:
            def flat(text: str) -> str:
                return " ".join(text.split())

            return f"{item.type}\t{flat(item.value)}\t{flat(item.help or '')}"

    add_completion_class(Fish, "fish")


def script(shell: str) -> str:
    """The completion script for `shell`, as vinesctl serves it to the shell."""
    from click.shell_completion import get_completion_class

    from vinesctl.cli import COMPLETE_VAR, cli

    register_shells()
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
