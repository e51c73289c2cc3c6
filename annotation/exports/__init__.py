"""Preference datasets from the arena's votes: raw votes, aggregated pairs, TRL DPO, OpenAI
preference fine-tuning, Anthropic HH; as JSON Lines, Parquet or a Hugging Face datasets folder.

* ``options``: what an export asks for (format, filters, rules), validated in one place;
* ``source``: the project's labels streamed from the database in comparison chunks;
* ``formats``: those labels as records of each format;
* ``writers``: records to files, in bounded memory;
* ``card``: the dataset card written with every export;
* ``service``: an export end to end, with progress, and the export jobs.
"""
