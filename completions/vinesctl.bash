# bash completion for vinesctl: asks the installed vinesctl for its script when loaded, so the
# completion always matches the installed vinesctl and Click. Install:
#   cp vinesctl.bash ~/.local/share/bash-completion/completions/vinesctl
if command -v vinesctl >/dev/null 2>&1; then
    eval "$(vinesctl completion bash)"
fi
