"""tfrelay.pipelines: the pipeline factory, its runners and the sample datasets."""
