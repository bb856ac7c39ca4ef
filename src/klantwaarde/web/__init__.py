"""The account managers' page (``klantwaarde serve``): the delivery layer on the web.

Only the command line imports it: ``web.app.create_app`` builds the Starlette application,
``web.users`` manages its users.
"""
