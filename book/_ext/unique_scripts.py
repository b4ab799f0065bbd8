"""Drop repeated <script> entries from each page (a local Sphinx extension of the book).

In this Jupyter Book 1.x stack sphinx-thebe registers its inline configuration script twice, so
every page declared ``const THEBE_JS_URL`` twice and the browser logged a SyntaxError. The page
context's script list is de-duplicated here, keeping the first of each (file, attributes) pair.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same inline script may be registered once with filename None and once with ""
        filename = getattr(script, "filename", script) or ""
        key = (str(filename), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
