"""The annotation server and the reward data made from its labels (`dialogforge annotate ...`)."""
