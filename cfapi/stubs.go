package cfapi

// Placeholders for the route groups and job handlers other files provide.
// Each file that implements one of these deletes its line here.
