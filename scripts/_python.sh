# Sourced by the shell entry points that run project code: sets $python to $PYTHON, else the project's .venv
# (made by scripts/setup_env.sh), else python3. The caller has already changed to the repository root.
if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    python=.venv/bin/python
else
    python=python3
fi
