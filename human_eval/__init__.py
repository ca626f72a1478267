"""Human-judgment meta-evaluation: loaders for the labelled sets (``loaders``), correlation
statistics with bootstrap CIs (``stats``), the baselines (``baselines``), tables and the HTML
report (``tables``, ``report``), and the pipeline behind ``roscoe meta-eval`` (``pipeline``).
Built on ``roscoe``; ``roscoe`` never imports it."""
