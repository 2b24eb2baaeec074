from covidnews.cli import main

main(prog_name="covidnews")
