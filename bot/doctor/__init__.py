"""`python -m bot doctor`: checks what can break a deployment, also run at the bot's start."""
