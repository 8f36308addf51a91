"""The hostile campaign of issue 14, as a script anyone can rerun.

It throws a few hundred hostile cases at segmend's command line and API: bad
arguments for every subcommand, bad files, read-only folders, a second writer
through other spellings of the path, readers beside a writer, hostile
``apply`` input, kill -9 and Ctrl-C in the middle of edits, a full disk, a bad
config file, Kafka on a closed port.  Each outcome is one of:

``ok``
    a valid command succeeded and its result is right (checked: voxels in s0
    as a plain HDF5 reader sees them, ``segmend verify``, counters); on a full
    disk, also a command that printed its result (the edit is safe in the
    journal) and then exits non-zero with one clear line because the HDF5 file
    could not be written, when the edit reaches the file once space returns;
``refused``
    an invalid command exited non-zero with one ``segmend: error: ...`` (or
    ``segmend: interrupted``) line on stderr, and changed nothing: the HDF5
    file's bytes, the sidecar folder ``FILE.segmend/``, the journal's tables
    (mutations, meta, label index, outbox, blobs), the files beside it;
``traceback``
    a traceback or a Python exception name on stderr, or a multi-line error;
``wrong``
    a refused command that changed something, a success with a wrong result,
    exit 0 with an error, a hang;
``lost``
    an acknowledged edit (a printed MutationID) missing once the dataset is
    reopened.

Usage (from the repository's root)::

    .venv/bin/python -m tools.campaign                 # every case, 10-15 min
    .venv/bin/python -m tools.campaign --list          # the case names
    .venv/bin/python -m tools.campaign --only 'apply/*' --only kill
    .venv/bin/python -m tools.campaign --keep          # keep every case's folder

(``.venv/bin/python tools/hostile_campaign.py ...``, the old name, still works.)
``--only`` takes a glob (when it holds ``*``, ``?`` or ``[``) or a substring of
``CATEGORY/NAME``.

A base pyramid is built once from the real cube in ``resources/`` (plus a small
crop that fits a small tmpfs); each case runs in a fresh folder holding a copy.
Cases that mount (a read-only bind mount, an 8 MB tmpfs for a full disk, a
second mount point of the same folder) need root and are left out without it.
No display, Kafka broker or network is needed.  It prints one line per case
that is neither ``ok`` nor ``refused`` and a summary table; the folders of those
cases are kept, each with an ``outcome.txt`` (the command, its output, what was
wrong).  The exit status is always 0 (a report, not a test).  The campaign also runs its own helper
processes (writers and readers beside the command under test) as
``python -m tools.campaign --helper ROLE ...``.

The modules: ``__main__`` (the command line), ``harness`` (a case's folder, the
process pool, the summary), ``processes`` (running commands), ``classify`` (the
classifier and state snapshots), ``bases`` (the base pyramids), ``helpers`` (the
helper processes), ``kinds`` and ``checks`` (how cases are built and checked),
``table`` (every case, in order) and one module per category of cases.
"""
