"""Sub-commands of the ``dialnet`` CLI: one module each (HELP, add_arguments, run)."""
