module smokeserver

go 1.26
