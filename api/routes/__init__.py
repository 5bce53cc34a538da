"""The API's routers, one module per area; each route calls core as the caller's account."""

from api.routes import account, admin, data, judges, lifecycle, rating, review, runs, webhooks

ROUTERS = [account.router, data.router, runs.router, review.router, rating.router, lifecycle.router, admin.router,
           webhooks.router, judges.router]
