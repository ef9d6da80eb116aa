"""Maps of leads for field teams: offline, self-contained Folium/Leaflet HTML.

``fieldtruth.maps.leads.build_leads_map`` draws a run's detections coloured by their review status
(restricted tier) or only coarse, suppressed counts per equal-area cell (shared tier), always with the
imagery coverage and the warning that every point is an unverified lead.
"""
