from luffy.cli import app

app(prog_name="luffy")
