"""Leaderboards: rep and team boards computed once per change of the data (``service``), served
over HTTP and, live, over Server-Sent Events through ``services.api.live.hub`` (whose stamps,
contenders and ranking contests share). A board has no SQL of its own: it reads the KPI
feature's bucket sums, the roster's repository and the targets."""
