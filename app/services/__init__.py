"""Typed service functions behind the routes: no FastAPI in here."""
