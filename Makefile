# Shortcuts for the scripts in deploy/local (the README names the scripts themselves).
.PHONY: demo test up down
demo:
	deploy/local/demo.sh
test:
	deploy/local/test.sh
up:
	deploy/local/up.sh
down:
	deploy/local/down.sh
