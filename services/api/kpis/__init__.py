"""KPIs: a rep's or a team's metrics in a window, their timeseries, activity nobody on the roster
owns yet, and the metric catalogue; ``queries`` holds the bucket SQL every read of sums uses."""
