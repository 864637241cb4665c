"""The TV wallboard: a static page (``static/``) that shows the leaderboards feature's live
boards; it has no logic, SQL or schemas of its own."""
