"""The database layer: the pool, migrations, and one module of SQL per table family."""
