from ltosyms.launch import main

main()
