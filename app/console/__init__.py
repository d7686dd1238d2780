"""The web console (Web 控制台): server-rendered pages for desk work under /console."""
