from voxbox.cli import run

run()
