"""The web dashboard: one HTML page and its static ES modules, served at `/` by the service
itself. The pages are a client of the REST API (`/v1/...`) with the workspace key in the
Authorization header; nothing here reads the database."""
