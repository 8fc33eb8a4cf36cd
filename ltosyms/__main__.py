from ltosyms.cli import main

main()
