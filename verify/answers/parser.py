r"""A parser for written answers that cannot run code.

A student's answer is untrusted text. It is never given to ``eval``, ``sympy.sympify`` or
``parse_expr`` (all of which evaluate Python). Instead a small tokenizer and a recursive-descent
parser read it and build the SymPy expression themselves, from a whitelist:

Grammar (SymPy syntax; ``^`` is accepted for ``**`` as ``sympify`` does)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*          LaTeX: juxtaposition multiplies too
    unary  := ("+" | "-") unary | power
    power  := atom [("**" | "^") unary]             right-associative: 2**-1, a**b**c = a**(b**c)
    atom   := NUMBER | NAME | FUNC "(" expr ("," expr)? ")" | "(" expr ")"
                                                    LaTeX: FUNC power  (\log\sigma^2 = log(sigma**2))
    NUMBER := digits [. digits] [e|E [+|-] digits]  read exactly (0.5 is 1/2), never as a float
    NAME   := the question's symbols (mu, sigma | x | s1, s2, ...) and constants pi, E (e is E too)
    FUNC   := exp, log (ln; log(x, b) with a base), sqrt, Abs (abs)

Nothing else is accepted: no attribute access, subscripts, strings, lambdas, keywords,
comprehensions, keyword arguments, comparisons or assignments; a name outside the whitelist is
refused with the list of names the question allows.

LaTeX (detected by a backslash or a brace) is translated to the same tokens by
:func:`latex_tokens`: ``\frac{a}{b}`` (``\dfrac``, ``\tfrac``, ``\frac12``), ``\sqrt{a}``,
``\sqrt[n]{a}``, ``^{...}``, ``s_1``/``s_{1}``, ``\log``, ``\ln``, ``\exp``, ``\mu``, ``\sigma``,
``\pi``, ``\left( \right)`` (also ``[ ]``, ``|`` for Abs), ``\cdot``, ``\times``, ``e^{...}``,
``\mathrm{e}``, spacing commands. SymPy's own LaTeX parser is not used: it needs the ANTLR runtime
4.11 (4.13 is installed here, which it refuses) and its grammar builds factorials, integrals and
sums that would be costly to evaluate.

Limits (each refusal says which): at most :data:`MAX_LENGTH` characters, :data:`MAX_TOKENS`
tokens, nesting depth :data:`MAX_DEPTH`; a number literal of at most :data:`MAX_LITERAL`
characters with a decimal exponent of at most :data:`MAX_SCI_EXPONENT`; a numeric exponent of at
most :data:`MAX_EXPONENT` in magnitude (numerator and denominator), a numeric power of at most
:data:`MAX_BITS` bits; no exponential inside an exponent (``exp(exp(x))``, ``2**(x**x)``: none of the
answers needs one, and they overflow any numeric check). Parsing is linear in the input and
never evaluates anything large, so every refusal is immediate (well under a millisecond per
character); the costly parts (simplification, integration) run later under a time bound (see
:mod:`verify.answers.equivalence`).
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import sympy as sp

MAX_LENGTH = 2000
MAX_TOKENS = 500
MAX_DEPTH = 40
MAX_LITERAL = 30
MAX_SCI_EXPONENT = 30
MAX_EXPONENT = 100
MAX_BITS = 4096
MAX_EXP_NESTING = 1

FUNCTIONS = {"exp": (sp.exp, 1), "log": (sp.log, 2), "sqrt": (sp.sqrt, 1), "Abs": (sp.Abs, 1)}
FUNCTION_ALIASES = {"ln": "log", "abs": "Abs"}
CONSTANTS = {"pi": sp.pi, "E": sp.E, "e": sp.E}
UNICODE_NAMES = {"μ": "mu", "σ": "sigma", "π": "pi", "·": "*", "×": "*", "−": "-"}


class ParseError(ValueError):
    """An answer that is refused or cannot be read; ``str()`` is the message for the student."""


@dataclass(frozen=True)
class Token:
    kind: str  # NUM, NAME, OP, LP, RP, COMMA, END
    text: str
    pos: int


_NUMBER = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_FORBIDDEN = {
    ".": "attribute access ('.') is not allowed",
    "[": "subscripts ('[') are not allowed",
    "]": "subscripts (']') are not allowed",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "=": "'=' is not allowed: give only the expression (the right-hand side)",
    ":": "':' is not allowed",
    ";": "';' is not allowed",
    "{": "braces are only read in LaTeX",
    "}": "braces are only read in LaTeX",
    "!": "'!' (factorial) is not allowed",
    "%": "'%' is not allowed",
    "@": "'@' is not allowed",
    "<": "comparisons are not allowed",
    ">": "comparisons are not allowed",
    "&": "'&' is not allowed",
    "|": "'|' is not allowed (use Abs(...))",
    "~": "'~' is not allowed",
    "#": "'#' is not allowed",
    "`": "'`' is not allowed",
    "\\": "'\\' is not allowed here",
}


def _refuse(reason: str, pos: int | None = None) -> ParseError:
    where = f" (at character {pos + 1})" if pos is not None else ""
    return ParseError(f"refused: {reason}{where}")


def _check_length(text: str) -> None:
    if not isinstance(text, str):
        raise _refuse(f"the answer must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _refuse(f"the answer is {len(text)} characters long; at most {MAX_LENGTH} are read")
    if not text.strip():
        raise ParseError("could not read the answer: it is empty")


def _normalize(text: str) -> str:
    for k, v in UNICODE_NAMES.items():
        text = text.replace(k, v)
    return text


_DIGITS = "0123456789"  # only these: '²' and '٣' are digits to str.isdigit, not numbers here
_SINGLE = {"+": ("OP", "+"), "-": ("OP", "-"), "*": ("OP", "*"), "/": ("OP", "/"), "^": ("OP", "**"),
           "(": ("LP", "("), ")": ("RP", ")"), ",": ("COMMA", ",")}


def _scan_one(text: str, i: int) -> tuple[Token, int]:
    """One plain token at ``text[i]`` (not whitespace): (token, next index)."""
    c = text[i]
    if c in _DIGITS or (c == "." and i + 1 < len(text) and text[i + 1] in _DIGITS):
        return _scan_number(text, i)
    if c.isalpha() or c == "_":
        return _scan_name(text, i)
    return _scan_symbol(text, i)


def _scan_number(text: str, i: int) -> tuple[Token, int]:
    """A number literal at ``text[i]``, refused when too long or its decimal exponent too large."""
    m = _NUMBER.match(text, i)
    if m is None:
        raise _refuse(f"the character {text[i]!r} is not allowed", i)
    lit = m.group(0)
    if len(lit) > MAX_LITERAL:
        raise _refuse(f"the number {lit[:20]}... is too long ({len(lit)} characters; at most {MAX_LITERAL})", i)
    if m.group(2) and abs(int(m.group(2)[1:])) > MAX_SCI_EXPONENT:
        raise _refuse(f"the number {lit} is too large or too small (decimal exponent above {MAX_SCI_EXPONENT})", i)
    return Token("NUM", lit, i), m.end()


def _scan_name(text: str, i: int) -> tuple[Token, int]:
    """A name at ``text[i]``; names starting with '_' and Python keywords are refused here."""
    m = _NAME.match(text, i)
    if m is None:
        raise _refuse(f"the character {text[i]!r} is not allowed", i)
    name = m.group(0)
    if name.startswith("_") or keyword.iskeyword(name):  # __import__, __class__, lambda, import, for
        raise _refuse(_unknown_name(name, {}, ""), i)
    return Token("NAME", name, i), m.end()


def _scan_symbol(text: str, i: int) -> tuple[Token, int]:
    """An operator, a parenthesis or a comma at ``text[i]``; any other character is refused with why."""
    c = text[i]
    if text.startswith("**", i):
        return Token("OP", "**", i), i + 2
    if text.startswith("//", i):
        raise _refuse("'//' (floor division) is not allowed", i)
    if c in _SINGLE:
        kind, tok = _SINGLE[c]
        return Token(kind, tok, i), i + 1
    if c in _FORBIDDEN:
        raise _refuse(_FORBIDDEN[c], i)
    raise _refuse(f"the character {c!r} is not allowed", i)


def plain_tokens(text: str) -> list[Token]:
    """Tokens of an answer in SymPy syntax."""
    tokens, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        tok, i = _scan_one(text, i)
        tokens.append(tok)
        if len(tokens) > MAX_TOKENS:
            raise _refuse(f"the answer has more than {MAX_TOKENS} tokens")
    return tokens


# ------------------------------------------------------------------------------------------ LaTeX
_LATEX_NAMES = {"mu": "mu", "sigma": "sigma", "pi": "pi", "log": "log", "ln": "log", "exp": "exp"}
_LATEX_SKIP = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "limits"}
_LATEX_FRACTIONS = {"frac", "dfrac", "tfrac"}
_LATEX_TIMES = {"cdot", "times", "ast"}
_LATEX_SIZES = {"left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "biggl", "biggr", "bigg", "Bigg"}
_LATEX_TEXT = {"mathrm", "operatorname", "text", "mathit", "mathnormal", "textrm"}
_LATEX_TEXT_WORDS = ("exp", "log", "ln", "Abs", "abs", "sqrt")  # \mathrm{e} and \mathrm{E} are E
_LATEX_DELIMITERS = {"{": "(", "}": ")", "|": "|", "lbrace": "(", "rbrace": ")", "vert": "|"}  # \left\{ ...
_LATEX_LETTERS = re.compile(r"[A-Za-z]+[0-9]*")  # s_1: the '_' is a subscript


def looks_like_latex(text: str) -> bool:
    return "\\" in text or "{" in text or "$" in text


def _is_latex_word(word: str) -> bool:
    """Is a run of letters one name (mu, sigma, exp, log, s12, pi, ...) rather than one-letter symbols?"""
    return (word in _LATEX_NAMES or word in FUNCTIONS or word in FUNCTION_ALIASES or bool(re.fullmatch(r"s\d+", word))
            or word in CONSTANTS)


class _Latex:
    """Translates LaTeX to plain tokens: :meth:`item` reads one item and hands it to the handler of its
    first character (:attr:`CHARACTERS`) or, for a backslash, of its command (:attr:`COMMANDS`)."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.out: list[Token] = []

    def emit(self, kind, text, pos):
        self.out.append(Token(kind, text, pos))
        if len(self.out) > MAX_TOKENS:
            raise _refuse(f"the answer has more than {MAX_TOKENS} tokens")

    def emit_all(self, pos, *tokens):
        """Emit each (kind, text) of ``tokens`` at ``pos``."""
        for kind, text in tokens:
            self.emit(kind, text, pos)

    def skip_space(self):
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def command(self) -> tuple[str, int]:
        start = self.i
        self.i += 1  # the backslash
        if self.i >= len(self.s):
            raise ParseError("could not read the LaTeX: it ends with a backslash")
        if self.s[self.i].isalpha():
            j = self.i
            while j < len(self.s) and self.s[j].isalpha():
                j += 1
            name, self.i = self.s[self.i:j], j
        else:
            name, self.i = self.s[self.i], self.i + 1
        return name, start

    def group(self, depth: int, pos: int) -> None:
        """``{...}``: its tokens, in parentheses."""
        self.emit("LP", "(", pos)
        self.i += 1
        while True:
            self.skip_space()
            if self.i >= len(self.s):
                raise ParseError(f"could not read the LaTeX: the brace at character {pos + 1} is not closed")
            if self.s[self.i] == "}":
                self.i += 1
                break
            self.item(depth + 1)
        self.emit("RP", ")", self.i - 1)

    def argument(self, depth: int) -> None:
        """A command's argument: a brace group, a command, or a single character; in parentheses."""
        self.skip_space()
        if self.i >= len(self.s):
            raise ParseError("could not read the LaTeX: an argument is missing at the end")
        pos = self.i
        if self.s[self.i] == "{":
            self.group(depth + 1, pos)
            return
        self.emit("LP", "(", pos)
        if self.s[self.i] == "\\":
            self.item(depth + 1)
        else:
            ch = self.s[self.i]
            tok, _ = _scan_one(ch, 0)
            self.emit(tok.kind, tok.text, pos)
            self.i += 1
        self.emit("RP", ")", pos)

    def braced_text(self) -> str:
        """The text of the ``{...}`` at the current position (no nesting), stripped; read past it."""
        j = self.s.find("}", self.i)
        if j < 0:
            raise ParseError("could not read the LaTeX: a brace is not closed")
        word, self.i = self.s[self.i + 1:j].strip(), j + 1
        return word

    def text_argument(self) -> str:
        r"""The word in the ``{...}`` after ``\mathrm`` or ``\operatorname``, stripped."""
        self.skip_space()
        if self.i >= len(self.s) or self.s[self.i] != "{":
            raise ParseError("could not read the LaTeX: \\mathrm and \\operatorname need a {...} argument")
        return self.braced_text()

    def item(self, depth: int) -> None:
        """One item of the LaTeX (after spaces), by the handler of its first character."""
        if depth > MAX_DEPTH:
            raise _refuse(f"the LaTeX is nested more than {MAX_DEPTH} levels deep")
        self.skip_space()
        if self.i >= len(self.s):
            return
        c = self.s[self.i]
        handler = self.CHARACTERS.get(c) or (_Latex.letters if c.isalpha() else _Latex.plain)
        handler(self, self.i, depth)

    # ---------------------------------------------------------------- handlers of a first character
    def backslash(self, pos: int, depth: int) -> None:
        r"""``\name`` or ``\{``: the handler of the command; spacing commands are skipped, others refused."""
        name, pos = self.command()
        if name in _LATEX_SKIP:
            return
        self.COMMANDS.get(name, _Latex.unknown_command)(self, name, pos, depth)

    def brace(self, pos: int, depth: int) -> None:
        """``{...}``: a group, in parentheses."""
        self.group(depth, pos)

    def unmatched_brace(self, pos: int, depth: int) -> None:
        """A ``}`` that closes nothing: unreadable."""
        raise ParseError(f"could not read the LaTeX: unmatched '}}' at character {pos + 1}")

    def superscript(self, pos: int, depth: int) -> None:
        """``^x``, ``^{...}``: a power of the argument."""
        self.i += 1
        self.emit("OP", "**", pos)
        self.argument(depth)

    def subscript(self, pos: int, depth: int) -> None:
        """``s_1``, ``s_{12}``: the digits (at most 3) joined to the name before them; nothing else."""
        self.i += 1
        if not self.out or self.out[-1].kind != "NAME":
            raise _refuse("a subscript is only read after a symbol name (s_1, s_{2})", pos)
        self.skip_space()
        if self.i < len(self.s) and self.s[self.i] == "{":
            sub = self.braced_text()
        else:
            sub, self.i = self.s[self.i:self.i + 1], self.i + 1
        if not sub or any(c not in _DIGITS for c in sub) or len(sub) > 3:
            raise _refuse(f"the subscript {sub[:10]!r} is not allowed (only s_1, s_2, ...)", pos)
        last = self.out.pop()
        self.emit("NAME", last.text + sub, last.pos)

    def bracket(self, pos: int, depth: int) -> None:
        """``[`` and ``]``: parentheses."""
        c = self.s[pos]
        self.i += 1
        self.emit("LP" if c == "[" else "RP", "(" if c == "[" else ")", pos)

    def dollar(self, pos: int, depth: int) -> None:
        """``$``: math mode, skipped."""
        self.i += 1

    def bar(self, pos: int, depth: int) -> None:
        """A bare ``|``: refused (it does not say which side it is on)."""
        raise _refuse("'|' is not read; write \\left| ... \\right| or \\operatorname{Abs}(...)", pos)

    def letters(self, pos: int, depth: int) -> None:
        """Letters: a known word (mu, sigma, exp, log, s12, ...) as one name, else one-letter symbols."""
        m = _LATEX_LETTERS.match(self.s, self.i)
        if m is None:  # a letter outside A-Z and a-z: é, ß, ...
            raise _refuse(f"the character {self.s[self.i]!r} is not allowed (write Greek letters as \\mu, \\sigma)",
                          pos)
        word = m.group(0)
        self.i = m.end()
        if _is_latex_word(word):
            self.emit("NAME", word, pos)
            return
        for k, ch in enumerate(word):
            if ch == "_" or ch.isdigit():
                raise _refuse(f"the name {word[:30]!r} is not allowed", pos)
            self.emit("NAME", ch, pos + k)

    def plain(self, pos: int, depth: int) -> None:
        """Anything else: one plain token (a number, an operator, ...), as in SymPy syntax."""
        tok, self.i = _scan_one(self.s, self.i)
        self.emit(tok.kind, tok.text, pos)

    CHARACTERS = {"\\": backslash, "{": brace, "}": unmatched_brace, "^": superscript, "_": subscript,
                  "[": bracket, "]": bracket, "$": dollar, "|": bar}

    # ----------------------------------------------------------------------- handlers of a command
    def fraction(self, name: str, pos: int, depth: int) -> None:
        r"""``\frac{a}{b}`` (``\dfrac``, ``\tfrac``, ``\frac12``): (a)/(b), in parentheses."""
        self.emit("LP", "(", pos)
        self.argument(depth)
        self.emit("OP", "/", pos)
        self.argument(depth)
        self.emit("RP", ")", pos)

    def square_root(self, name: str, pos: int, depth: int) -> None:
        r"""``\sqrt{a}``: sqrt(a); ``\sqrt[n]{a}``: an n-th root."""
        self.skip_space()
        if self.i < len(self.s) and self.s[self.i] == "[":
            self.nth_root(pos, depth)
        else:
            self.emit("NAME", "sqrt", pos)
            self.argument(depth)

    def nth_root(self, pos: int, depth: int) -> None:
        r"""``\sqrt[n]{a}`` (at its ``[``): ((a)**(1/(n))), the index read as SymPy syntax."""
        close = self.s.find("]", self.i)
        if close < 0:
            raise ParseError("could not read the LaTeX: \\sqrt[ is not closed")
        index = self.s[self.i + 1:close]
        self.i = close + 1
        self.emit("LP", "(", pos)
        self.argument(depth)
        self.emit_all(pos, ("OP", "**"), ("LP", "("), ("NUM", "1"), ("OP", "/"), ("LP", "("))
        for tok in plain_tokens(index):
            self.emit(tok.kind, tok.text, pos)
        self.emit_all(pos, ("RP", ")"), ("RP", ")"), ("RP", ")"))

    def times(self, name: str, pos: int, depth: int) -> None:
        r"""``\cdot``, ``\times``, ``\ast``: a product."""
        self.emit("OP", "*", pos)

    def sized_delimiter(self, name: str, pos: int, depth: int) -> None:
        r"""``\left(``, ``\right]``, ``\bigl|`` ...: a parenthesis (``|`` as Abs), ``.`` nothing."""
        d = self.delimiter(name, pos)
        if d in "([":
            self.emit("LP", "(", pos)
        elif d in ")]":
            self.emit("RP", ")", pos)
        elif d == "|":
            if name.endswith("l") or name == "left":
                self.emit_all(pos, ("NAME", "Abs"), ("LP", "("))
            else:
                self.emit("RP", ")", pos)
        elif d != ".":
            raise _refuse(f"the delimiter {d!r} is not supported", pos)

    def delimiter(self, name: str, pos: int) -> str:
        r"""The delimiter after ``\left``, ``\big`` ...: a character, or ``\{`` ``\lbrace`` ... as one."""
        self.skip_space()
        if self.i >= len(self.s):
            raise ParseError(f"could not read the LaTeX: \\{name} needs a delimiter")
        d = self.s[self.i]
        if d != "\\":
            self.i += 1
            return d
        d2, _ = self.command()
        d = _LATEX_DELIMITERS.get(d2)
        if d is None:
            raise _refuse(f"the delimiter \\{d2} is not supported", pos)
        return d

    def text_word(self, name: str, pos: int, depth: int) -> None:
        r"""``\mathrm{e}`` (E), ``\operatorname{log}`` (a function name) ...; any other word is refused."""
        word = self.text_argument()
        if word in ("e", "E"):
            self.emit("NAME", "E", pos)
        elif word in _LATEX_TEXT_WORDS:
            self.emit("NAME", word, pos)
        else:
            raise _refuse(f"\\{name}{{{word[:30]}}} is not allowed", pos)

    def named_symbol(self, name: str, pos: int, depth: int) -> None:
        r"""``\mu``, ``\sigma``, ``\pi``, ``\log``, ``\ln``, ``\exp``: their names."""
        self.emit("NAME", _LATEX_NAMES[name], pos)

    def escaped_brace(self, name: str, pos: int, depth: int) -> None:
        r"""``\{`` and ``\}``: parentheses."""
        self.emit("LP" if name == "{" else "RP", "(" if name == "{" else ")", pos)

    def unknown_command(self, name: str, pos: int, depth: int) -> None:
        """Any other command: refused."""
        raise _refuse(f"the LaTeX command \\{name[:30]} is not allowed", pos)

    COMMANDS = {**dict.fromkeys(_LATEX_FRACTIONS, fraction), "sqrt": square_root, **dict.fromkeys(_LATEX_TIMES, times),
                **dict.fromkeys(_LATEX_SIZES, sized_delimiter), **dict.fromkeys(_LATEX_TEXT, text_word),
                **dict.fromkeys(_LATEX_NAMES, named_symbol), "{": escaped_brace, "}": escaped_brace}


def latex_tokens(text: str) -> list[Token]:
    """Tokens of an answer in LaTeX (the same token language as :func:`plain_tokens`)."""
    text = text.strip()
    lx = _Latex(text)
    while True:
        lx.skip_space()
        if lx.i >= len(text):
            break
        lx.item(0)
    return lx.out


# ---------------------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, tokens: list[Token], symbols: dict, implicit: bool, question: str):
        self.toks = tokens + [Token("END", "", tokens[-1].pos + len(tokens[-1].text) if tokens else 0)]
        self.k = 0
        self.symbols = symbols
        self.implicit = implicit
        self.question = question

    @property
    def tok(self) -> Token:
        return self.toks[self.k]

    def take(self) -> Token:
        t = self.toks[self.k]
        self.k += 1
        return t

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.syntax(f"expected {what}")
        return self.take()

    def syntax(self, what: str) -> ParseError:
        t = self.tok
        found = "the end of the answer" if t.kind == "END" else repr(t.text)
        return ParseError(f"could not read the answer: {what}, found {found} at character {t.pos + 1}")

    def parse(self):
        if self.tok.kind == "END":
            raise ParseError("could not read the answer: it is empty")
        expr = self.expr(0)
        if self.tok.kind != "END":
            raise self.syntax("expected an operator or the end of the answer")
        return expr

    def depth_check(self, depth: int):
        if depth > MAX_DEPTH:
            raise _refuse(f"the expression is nested more than {MAX_DEPTH} levels deep", self.tok.pos)

    # ``depth`` counts parentheses, function calls, unary signs and exponents: every way the
    # recursion can go deeper (about five Python frames a level, so never near the recursion limit)
    def expr(self, depth):
        value = self.term(depth)
        while self.tok.kind == "OP" and self.tok.text in "+-":
            op = self.take().text
            rhs = self.term(depth)
            value = _checked(value + rhs if op == "+" else value - rhs)
        return value

    def starts_atom(self) -> bool:
        return self.tok.kind in ("NUM", "NAME", "LP")

    def term(self, depth):
        value = self.unary(depth)
        while True:
            if self.tok.kind == "OP" and self.tok.text in ("*", "/"):
                op = self.take().text
                rhs = self.unary(depth)
            elif self.implicit and self.starts_atom():
                op, rhs = "*", self.power(depth)
            else:
                return value
            if op == "/" and rhs == 0:
                raise _refuse("division by zero")
            value = _checked(value * rhs if op == "*" else value / rhs)

    def unary(self, depth):
        if self.tok.kind == "OP" and self.tok.text in "+-":
            op = self.take().text
            self.depth_check(depth + 1)
            operand = self.unary(depth + 1)
            return -operand if op == "-" else operand
        return self.power(depth)

    def power(self, depth):
        base = self.atom(depth)
        if self.tok.kind == "OP" and self.tok.text == "**":
            pos = self.take().pos
            self.depth_check(depth + 1)
            exponent = self.unary(depth + 1)
            return _power(base, exponent, pos)
        return base

    def atom(self, depth):
        t = self.tok
        if t.kind == "NUM":
            self.take()
            return sp.Rational(t.text)
        if t.kind == "LP":
            self.take()
            self.depth_check(depth + 1)
            inner = self.expr(depth + 1)
            self.expect("RP", "')'")
            return inner
        if t.kind == "NAME":
            self.take()
            return self.name(t, depth)
        raise self.syntax("expected a number, a name or '('")

    def name(self, t: Token, depth):
        n = FUNCTION_ALIASES.get(t.text, t.text)
        if n in FUNCTIONS:
            fn, max_args = FUNCTIONS[n]
            self.depth_check(depth + 1)
            depth += 1
            if self.tok.kind == "LP":
                self.take()
                args = [self.expr(depth)]
                while self.tok.kind == "COMMA":
                    self.take()
                    args.append(self.expr(depth))
                self.expect("RP", "')' closing the arguments of " + t.text)
                if len(args) > max_args:
                    most = "one argument" if max_args == 1 else "at most two arguments"
                    raise _refuse(f"{t.text} takes {most}", t.pos)
            elif self.implicit:  # LaTeX: \log\sigma^2, \exp x
                args = [self.power(depth)]
            else:
                raise self.syntax(f"expected '(' after {t.text}")
            if n == "log" and len(args) == 2 and args[1] in (0, 1):
                raise _refuse("a logarithm with base 0 or 1")
            return _checked(fn(*args))
        if n in self.symbols:
            return self.symbols[n]
        if n in CONSTANTS:
            return CONSTANTS[n]
        raise _refuse(_unknown_name(t.text, self.symbols, self.question), t.pos)


def _unknown_name(name: str, symbols: dict, question: str) -> str:
    if name.startswith("_"):
        return f"names starting with '_' ({name[:30]}) are not allowed"
    if keyword.iskeyword(name):
        return f"the Python keyword '{name}' is not allowed"
    allowed = ", ".join(sorted(set(symbols), key=lambda s: (len(s), s))[:6])
    more = ", ..." if len(symbols) > 6 else ""
    return (f"unknown name '{name[:30]}': {question} may use the symbols {allowed}{more}, the constants pi "
            f"and E (or e), and the functions exp, log (ln), sqrt, Abs")


def _is_exponential(e) -> bool:
    return isinstance(e, sp.exp) or (isinstance(e, sp.Pow) and not e.exp.is_Number)


def _exp_nesting(e) -> int:
    """How deep exponentials nest in ``e``: exp(x) is 1, exp(exp(x)) is 2, 2**(x**x) is 2."""
    inner = max((_exp_nesting(a) for a in e.args), default=0)
    return inner + 1 if _is_exponential(e) else inner


def _checked(value):
    """Refuse non-finite results (1/0, log(0)) and exponentials nested in exponents."""
    if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise _refuse("the expression is undefined or infinite (a division by zero or log(0)?)")
    if _is_exponential(value) and _exp_nesting(value) > MAX_EXP_NESTING:
        raise _refuse("an exponential inside an exponent (such as exp(exp(x)) or 2**(x**x)) is not accepted")
    return value


def _bits(r) -> int:
    return max(abs(int(r.p)).bit_length(), abs(int(r.q)).bit_length())


def _power(base, exponent, pos):
    if exponent.is_Number:
        if not exponent.is_Rational:
            raise _refuse("only exact exponents are accepted", pos)
        p, q = int(exponent.p), int(exponent.q)
        if abs(p) > MAX_EXPONENT or q > MAX_EXPONENT:
            raise _refuse(f"the exponent {_short(exponent)} is too large (at most {MAX_EXPONENT} in magnitude, "
                          f"denominator at most {MAX_EXPONENT})", pos)
        if base.is_Rational and _bits(base) * abs(p) > MAX_BITS:
            raise _refuse(f"the power {_short(base)}**{_short(exponent)} is too large (more than {MAX_BITS} bits)", pos)
        if base == 0 and p < 0:
            raise _refuse("division by zero (0 to a negative power)", pos)
    return _checked(sp.Pow(base, exponent))


def _short(x) -> str:
    s = str(x)
    return s if len(s) <= 30 else s[:12] + "..." + s[-6:] + f" ({len(s)} characters)"


def parse(text: str, symbols: dict, question: str = "this answer"):
    """The SymPy expression of ``text``; ``symbols`` maps the allowed names to SymPy symbols.

    Raises :class:`ParseError` (message starting with "refused:" or "could not read") otherwise.
    """
    _check_length(text)
    text = _normalize(text)
    latex = looks_like_latex(text)
    tokens = latex_tokens(text) if latex else plain_tokens(text)
    if not tokens:
        raise ParseError("could not read the answer: it is empty")
    expr = _Parser(tokens, symbols, implicit=latex, question=question).parse()
    _final_check(expr)
    return expr


def _final_check(expr) -> None:
    for node in sp.preorder_traversal(expr):
        if node.is_Rational and _bits(node) > 4 * MAX_BITS:
            raise _refuse("a number in the expression is too large")
        if isinstance(node, sp.Pow) and node.exp.is_Rational and (abs(int(node.exp.p)) > 100 * MAX_EXPONENT):
            raise _refuse(f"the exponent {_short(node.exp)} is too large")
    if _exp_nesting(expr) > MAX_EXP_NESTING:
        raise _refuse("an exponential inside an exponent (such as exp(exp(x)) or 2**(x**x)) is not accepted")
