"""Steps of the archive_deleted_rows task kept beside it: row trees and findings."""
