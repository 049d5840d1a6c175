"""What users run on top of the library: the web page (``serve``, with live streams), the demo, the toy model,
rendering of results."""
