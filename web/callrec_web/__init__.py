"""callrec's web layer: server-rendered pages and a small JSON API for the appliance.

Import from the modules (kept light so that `callrec user add` does not load the web server):
    callrec_web.app.make_app, callrec_web.context.WebContext, callrec_web.server.WebServer,
    callrec_web.users.UserStore, callrec_web.setup_code.FirstStartCode
"""
