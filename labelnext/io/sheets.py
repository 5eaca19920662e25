"""File formats for labels: the labeling CSV sheet and Label Studio's tasks, config and export.

Pure functions over plain rows and arrays: no analyzer, no label store. Readers check the
whole file and return ``(items, classes)`` arrays (dataset indices, class ids) or raise one
``ValueError`` line naming the file, the line or task, and what is allowed, so a caller
writes nothing from a bad file. Writers replace their file atomically.

Label Studio's formats follow its documentation and source (HumanSignal/label-studio):
``docs/source/guide/export.md`` ("Label Studio JSON format of annotated tasks": a list of
tasks, each with ``data`` and ``annotations[].result[]``, ``was_cancelled``, ``updated_at``)
and ``docs/source/guide/predictions.md`` (``predictions[].result[]`` of type ``choices``
with ``value.choices``; ``score`` and ``model_version`` per prediction).
"""
import csv
import io
import json
import math
import numbers
import urllib.parse
from datetime import datetime
from xml.sax.saxutils import quoteattr

import numpy as np

from labelnext.utils.checks import check_class_names, check_int
from labelnext.io.files import atomic_path, save_json

CSV_COLUMNS = ("index", "label", "predicted_class", "confidence", "image")
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV Injection"): written behind a quote, which every spreadsheet shows as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Names tying Label Studio's results to the labeling config written by labelstudio_config.
LS_FROM_NAME = "label"
LS_TO_NAME = "image"


def _ascii_digits(token):
    """True for a non-empty run of 0-9 only (str.isdigit also accepts '²' and Arabic-Indic digits)."""
    return token.isascii() and token.isdigit()


def _class_id(token, lookup, n_classes):
    """Class id of a class name, or of a class id written as text; None when neither."""
    if token in lookup:  # a name wins: a folder of digits names its classes '0'..'9'
        return lookup[token]
    if _ascii_digits(token) and int(token) < n_classes:
        return int(token)
    return None


def neutralize_cell(value):
    """A sheet cell a spreadsheet shows as text: a leading formula character gets a quote before it."""
    value = "" if value is None else str(value)
    if not value.startswith(FORMULA_START):
        return value
    try:
        float(value)  # a plain number such as -1.5 is data, not a formula
        return value
    except ValueError:
        return "'" + value


def restore_cell(value):
    """The value :func:`neutralize_cell` wrote: the quote before a formula character is dropped."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def _allowed(class_names):
    return f"allowed: {class_names} or ids 0-{len(class_names) - 1}"


def _check_n_items(n_items):
    return None if n_items is None else check_int(n_items, "n_items", low=1)


# --------------------------------------------------------------------------- CSV sheet
def write_label_csv(path, rows):
    """Write a labeling sheet ``index,label,predicted_class,confidence,image`` atomically.

    Parameters
    ----------
    path : str or Path
    rows : iterable of dict
        One per item, with ``index`` (dataset index) and optionally ``label`` (usually
        empty: the person fills it in), ``predicted_class`` (name), ``confidence``
        (float, written with 4 decimals) and ``image`` (a file path).

    Returns
    -------
    path : str or Path
        ``path``, as given.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for pos, row in enumerate(rows):
        unknown = set(row) - set(CSV_COLUMNS)
        if unknown:
            raise ValueError(f"rows[{pos}] has unknown columns {sorted(unknown)}; allowed: {list(CSV_COLUMNS)}")
        index = check_int(row.get("index"), f"rows[{pos}]['index']", low=0)
        confidence = row.get("confidence")
        if confidence is None or confidence == "":
            confidence = ""
        elif isinstance(confidence, numbers.Real) and math.isfinite(confidence):
            confidence = f"{confidence:.4f}"
        else:
            raise ValueError(f"rows[{pos}]['confidence'] must be a finite number or empty, got {confidence!r}")
        writer.writerow([index, *(neutralize_cell(row.get(c)) for c in ("label", "predicted_class")), confidence,
                         neutralize_cell(row.get("image"))])
    # newline='': the csv module writes its own line ends ('\r\n', as the sheet always had).
    with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(out.getvalue())
    return path


def _decode(path, data, what):
    """UTF-8 text of ``data`` without a BOM; one line naming the byte and line when not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{what} {str(path)!r} is not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} (line {line}); "
            f"save it as UTF-8 (Excel: 'CSV UTF-8')"
        ) from None
    # Excel's "CSV UTF-8" starts with a byte-order mark; without this the first column
    # would be named '\ufeffindex'.
    return text.removeprefix("\ufeff")


def _read_bytes(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ValueError(f"{what} {str(path)!r} does not exist") from None
    except OSError as e:
        raise ValueError(f"{what} {str(path)!r} cannot be read: {e.strerror or e}") from None


def read_label_csv(path, class_names, n_items=None):
    """Read the labels a person filled into a sheet.

    Rows with an empty ``label`` are not labeled and skipped. ``label`` is a class
    name or a class id. Identical duplicate rows of one index collapse to one label;
    duplicates with different labels are refused (the file cannot say which is
    meant). The whole file is checked before anything is returned.

    Parameters
    ----------
    path : str or Path
        A CSV with at least the columns ``index`` and ``label`` (any order; other
        columns are ignored), UTF-8 with or without a byte-order mark, fields
        separated by ',' (or ';' throughout, as Excel writes in some locales).
    class_names : list of str
    n_items : int, optional
        When given, every index must be in ``[0, n_items)``.

    Returns
    -------
    items : ndarray of shape (n,), int64
        Dataset indices, in file order.
    classes : ndarray of shape (n,), int64
        Class ids.

    Raises
    ------
    ValueError
        One line naming the file and the line: not UTF-8, missing column, a row with
        another number of fields than the header, an index that is not an integer or
        not in the data set, an unknown class, conflicting duplicates.
    """
    class_names = check_class_names(class_names)
    n_items = _check_n_items(n_items)
    where = f"labels CSV {str(path)!r}"
    text = _decode(path, _read_bytes(path, "labels CSV"), "labels CSV")
    lookup = {n: i for i, n in enumerate(class_names)}
    # Excel in locales with a decimal comma saves "CSV" with ';' between fields.
    first = text.split("\n", 1)[0]
    delimiter = ";" if "," not in first and ";" in first else ","
    # strict: an unclosed quote is an error, not a label running to the end of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        if not {"index", "label"} <= set(header):
            raise ValueError(f"{where} needs the columns 'index' and 'label', got {header}")
        col_index, col_label = header.index("index"), header.index("label")
        seen = {}  # index -> (class id, line)
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise ValueError(
                    f"{where} line {line}: {len(row)} fields but the header has {len(header)} ({', '.join(header)})"
                )
            label = restore_cell(row[col_label].strip()).strip()
            if not label:
                continue
            raw = row[col_index].strip()
            if not (_ascii_digits(raw) or (raw[:1] == "-" and _ascii_digits(raw[1:]))):
                raise ValueError(f"{where} line {line}: index {raw!r} is not an integer (columns: {', '.join(header)})")
            index = int(raw)
            if index < 0 or (n_items is not None and index >= n_items):
                upper = "" if n_items is None else f"-{n_items - 1} (n_items={n_items})"
                raise ValueError(f"{where} line {line}: index {index} is not a dataset index; allowed: 0{upper}")
            cls = _class_id(label, lookup, len(class_names))
            if cls is None:
                raise ValueError(f"{where} line {line}: label {label!r} is not a class; {_allowed(class_names)}")
            if index in seen:
                prev_cls, prev_line = seen[index]
                if prev_cls != cls:
                    raise ValueError(
                        f"{where} line {line}: index {index} is labeled {class_names[cls]!r} but line {prev_line} "
                        f"labels it {class_names[prev_cls]!r}; keep one of the two lines"
                    )
                continue
            seen[index] = (cls, line)
    except csv.Error as e:
        raise ValueError(f"{where} line {reader.line_num}: not valid CSV ({e})") from None
    items = np.fromiter(seen, dtype=np.int64, count=len(seen))
    classes = np.fromiter((c for c, _ in seen.values()), dtype=np.int64, count=len(seen))
    return items, classes


# --------------------------------------------------------------------------- Label Studio
def labelstudio_config(class_names):
    """Label Studio labeling config: the image and one single-choice control over the classes.

    Returns
    -------
    xml : str
        Paste it into the project's Settings > Labeling Interface > Code.
    """
    class_names = check_class_names(class_names)
    choices = "\n".join(f"    <Choice value={quoteattr(n)}/>" for n in class_names)
    return (
        "<View>\n"
        f"  <Image name={quoteattr(LS_TO_NAME)} value=\"$image\"/>\n"
        f"  <Choices name={quoteattr(LS_FROM_NAME)} toName={quoteattr(LS_TO_NAME)} choice=\"single\" showInLine=\"true\">\n"
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def _task_url(image_url, index, image):
    try:
        return image_url.format(index=index, image=urllib.parse.quote(str(image or "")))
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(
            f"image_url must be a template with only {{index}} and {{image}} fields, got {image_url!r} ({e!r})"
        ) from None


def write_labelstudio_tasks(path, rows, class_names, *, image_url, model_version):
    """Write Label Studio tasks (JSON import) with the model's prediction for each item.

    Parameters
    ----------
    path : str or Path
    rows : iterable of dict
        One per item, in rank order: ``index`` (dataset index), optionally ``image``
        (file path), ``predicted_class`` (name or id), ``confidence`` (the model's
        probability of that class) and ``score`` (the strategy's score; Label Studio
        sorts tasks by the prediction score, which is ``score`` when given, else
        ``confidence``).
    class_names : list of str
    image_url : str
        Template of each task's ``data.image``, with ``{index}`` and/or ``{image}``
        (the row's path, URL-quoted): e.g. ``'http://127.0.0.1:8765/image/{index}'``
        for ``al label``'s server, or ``'/data/local-files/?d={image}'`` for Label
        Studio's local-file serving.
    model_version : str
        Names the model (e.g. ``'round-3'``); Label Studio shows it per prediction.

    Returns
    -------
    n_tasks : int
    """
    class_names = check_class_names(class_names)
    if not isinstance(image_url, str) or ("{index}" not in image_url and "{image}" not in image_url):
        raise ValueError(f"image_url must be a string template containing {{index}} or {{image}}, got {image_url!r}")
    if not isinstance(model_version, str) or not model_version:
        raise ValueError(f"model_version must be a non-empty string, got {model_version!r}")
    lookup = {n: i for i, n in enumerate(class_names)}
    tasks = []
    for pos, row in enumerate(rows):
        index = check_int(row.get("index"), f"rows[{pos}]['index']", low=0)
        task = {"data": {"image": _task_url(image_url, index, row.get("image")), "index": index}}
        predicted = row.get("predicted_class")
        if predicted is not None and predicted != "":
            cls = _class_id(str(predicted), lookup, len(class_names))
            if cls is None or isinstance(predicted, bool):
                raise ValueError(f"rows[{pos}]['predicted_class'] = {predicted!r} is not a class; {_allowed(class_names)}")
            score = row.get("score", row.get("confidence"))
            prediction = {
                "model_version": model_version,
                "result": [{
                    "from_name": LS_FROM_NAME, "to_name": LS_TO_NAME, "type": "choices",
                    "value": {"choices": [class_names[cls]]},
                }],
            }
            if score is not None:
                if not isinstance(score, numbers.Real) or not math.isfinite(score):
                    raise ValueError(f"rows[{pos}] score/confidence must be a finite number, got {score!r}")
                prediction["score"] = float(score)
            task["predictions"] = [prediction]
        tasks.append(task)
    save_json(path, tasks)
    return len(tasks)


def _annotation_time(annotation):
    """Sort key: last update (else creation) time, then id; unparseable times sort first."""
    stamp = annotation.get("updated_at") or annotation.get("created_at") or ""
    try:
        when = datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        when = float("-inf")
    ident = annotation.get("id")
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        ident = -1
    return when, ident


def _annotation_choice(annotation, where):
    """The one class name an annotation chose, or None when it chose nothing."""
    chosen = []
    for result in annotation.get("result") or []:
        if isinstance(result, dict) and result.get("type") == "choices":
            value = result.get("value") if isinstance(result.get("value"), dict) else {}
            choices = value.get("choices") or []
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise ValueError(f"{where}: annotation {annotation.get('id')} has choices {choices!r}; expected class names")
            chosen.extend(choices)
    distinct = list(dict.fromkeys(chosen))
    if len(distinct) > 1:
        raise ValueError(f"{where}: annotation {annotation.get('id')} chose {distinct}; one class per item expected")
    return distinct[0] if distinct else None


def read_labelstudio_export(path, class_names, n_items=None):
    """Read Label Studio's JSON export of tasks written by :func:`write_labelstudio_tasks`.

    Cancelled (skipped) annotations and annotations with no choice are skipped and
    counted. When a task has several annotations, the latest (``updated_at``, then
    ``id``) wins; so does the latest annotation when one index appears in several tasks.

    Parameters
    ----------
    path : str or Path
        Label Studio's "JSON" export: a list of tasks, each with ``data.index`` (the
        dataset index) and ``annotations[].result[].value.choices``.
    class_names : list of str
    n_items : int, optional
        When given, every index must be in ``[0, n_items)``.

    Returns
    -------
    items : ndarray of shape (n,), int64
        Dataset indices, in task order.
    classes : ndarray of shape (n,), int64
    stats : dict
        ``tasks``, ``labeled``, ``unannotated`` (tasks without a usable annotation),
        ``cancelled`` and ``empty`` (annotations skipped), ``several`` (tasks with more
        than one usable annotation), ``disagreeing`` (those whose annotations differ;
        the latest was taken), ``duplicate_tasks`` (tasks repeating an index).

    Raises
    ------
    ValueError
        One line naming the file and the task: not JSON, not a list of tasks, a task
        without ``data.index``, an index not in the data set, an unknown class.
    """
    class_names = check_class_names(class_names)
    n_items = _check_n_items(n_items)
    what = "Label Studio export"
    text = _decode(path, _read_bytes(path, what), what)
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {str(path)!r} is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:  # the parser recurses once per nested array / object
        raise ValueError(f"{what} {str(path)!r} is nested too deeply to be a Label Studio export") from None
    if not isinstance(tasks, list):
        raise ValueError(
            f"{what} {str(path)!r} must be a list of tasks (Label Studio's 'JSON' export), got {type(tasks).__name__}"
        )
    stats = dict.fromkeys(("tasks", "labeled", "unannotated", "cancelled", "empty", "several", "disagreeing",
                           "duplicate_tasks"), 0)
    stats["tasks"] = len(tasks)
    best = {}  # index -> (time key, class id)
    for pos, task in enumerate(tasks):
        where = f"{what} {str(path)!r} task {pos}"
        if not isinstance(task, dict):
            raise ValueError(f"{where}: expected a task object, got {type(task).__name__}")
        where += f" (id {task.get('id')})"
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        raw = data.get("index")
        if isinstance(raw, str) and _ascii_digits(raw.strip()):
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"{where}: data.index must be the dataset index (an integer), got {raw!r}; "
                             f"import tasks written by write_labelstudio_tasks")
        if raw < 0 or (n_items is not None and raw >= n_items):
            upper = "" if n_items is None else f"-{n_items - 1} (n_items={n_items})"
            raise ValueError(f"{where}: data.index {raw} is not a dataset index; allowed: 0{upper}")
        usable = []
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict):
                raise ValueError(f"{where}: annotations must be objects, got {type(annotation).__name__}")
            if annotation.get("was_cancelled"):
                stats["cancelled"] += 1
                continue
            choice = _annotation_choice(annotation, where)
            if choice is None:
                stats["empty"] += 1
                continue
            if choice not in class_names:
                raise ValueError(f"{where}: choice {choice!r} is not a class; allowed: {class_names}")
            usable.append((_annotation_time(annotation), class_names.index(choice)))
        if not usable:
            stats["unannotated"] += 1
            continue
        if len(usable) > 1:
            stats["several"] += 1
            stats["disagreeing"] += len({c for _, c in usable}) > 1
        latest = max(usable, key=lambda u: u[0])
        if raw in best:
            stats["duplicate_tasks"] += 1
            if latest[0] < best[raw][0]:
                continue
        best[raw] = latest
    stats["labeled"] = len(best)
    items = np.fromiter(best, dtype=np.int64, count=len(best))
    classes = np.fromiter((c for _, c in best.values()), dtype=np.int64, count=len(best))
    return items, classes, stats
