"""HTTP entrypoint: thin views that load with a schema, call one service, dump with a schema."""
