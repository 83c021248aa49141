"""The network file: its dataclasses and checking loader (``network``), the embedded
networks (``defaults``), ``--set KEY=VALUE`` changes (``overrides``) and the JSON
Schema for editors (``schema``)."""
