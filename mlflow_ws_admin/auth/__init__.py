"""The basic-auth database: its RBAC rows moved into `default` with every effective permission kept."""
