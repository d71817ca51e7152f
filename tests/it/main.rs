mod cli_calendar;
