"""Workflows built on the pipeline steps: preparing the tables (``prepare``, ``streamed_prepare``), checking a
table against a config (``table_checks``), writing a config (``init_config``), presets and their runs
(``presets``, ``preset_run``), comparing fusions (``compare``) and the demos (``demo``)."""
