"""The build: pipeline definition, input spool, the run loop and the engines that run stages."""
