"""Tables, migrations and the session factory. The only room that defines tables."""
