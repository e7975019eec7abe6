# fish completion for vinesctl: asks the installed vinesctl for its script when loaded, so the
# completion always matches the installed vinesctl and Click. Install:
#   cp vinesctl.fish ~/.config/fish/completions/vinesctl.fish
if command -q vinesctl
    vinesctl completion fish | source
end
