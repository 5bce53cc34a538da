"""The API's routers, one module per area; each route calls core as the caller's account."""

from api.routes import account

ROUTERS = [account.router]
