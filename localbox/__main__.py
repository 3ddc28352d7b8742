from localbox.cli import main

main()
