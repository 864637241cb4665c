"""The TV wallboard: a static page (``static/``) that shows the leaderboards feature's live
boards, or one contest's live standings (``?contest=``); it has no logic, SQL or schemas of
its own."""
