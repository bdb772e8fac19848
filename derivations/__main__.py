"""``python -m derivations``: print every registered derivation."""
from . import ALL, get


def main() -> None:
    for name in ALL:
        derivation = get(name)
        print(derivation.pretty())
        print("LaTeX:", derivation.latex())
        print()


if __name__ == "__main__":
    main()
