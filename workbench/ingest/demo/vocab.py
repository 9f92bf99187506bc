"""Word lists for the demo tenant: names, places, senders, subjects and lures.

All organisations and people are fictional. Brand names appear only as what a real
phishing kit imitates (lookalike domains are generated, never real hosts).
"""

from __future__ import annotations

COMPANIES = [
    ("Fabrikam", "fabrikam"),
    ("Northwind Traders", "northwindtraders"),
    ("Tailspin Toys", "tailspintoys"),
    ("Woodgrove Bank", "woodgrovebank"),
    ("Litware", "litware"),
    ("Proseware", "proseware"),
    ("Adatum", "adatum"),
    ("Fourth Coffee", "fourthcoffee"),
]

# city, country, tz, utc offset (h), egress /16, lat, lon, weight
OFFICES = [
    ("Seattle", "US", "America/Los_Angeles", -8, "52.160", "47.61", "-122.33", 34),
    ("New York", "US", "America/New_York", -5, "52.170", "40.71", "-74.01", 18),
    ("London", "GB", "Europe/London", 0, "51.140", "51.51", "-0.13", 20),
    ("Berlin", "DE", "Europe/Berlin", 1, "20.113", "52.52", "13.40", 12),
    ("Singapore", "SG", "Asia/Singapore", 8, "20.198", "1.35", "103.82", 9),
    ("Sao Paulo", "BR", "America/Sao_Paulo", -3, "191.232", "-23.55", "-46.63", 7),
]

DEPARTMENTS = [
    ("Sales", 18),
    ("Engineering", 22),
    ("Finance", 9),
    ("Human Resources", 5),
    ("Legal", 3),
    ("Marketing", 8),
    ("IT", 7),
    ("Operations", 12),
    ("Customer Support", 12),
    ("Procurement", 4),
]

EXECUTIVE_TITLES = [
    "Chief Financial Officer",
    "Chief Operating Officer",
    "Chief Technology Officer",
    "Chief People Officer",
    "General Counsel",
]

TITLES = {
    "Sales": ["Account Executive", "Sales Representative", "Sales Engineer", "Inside Sales Specialist"],
    "Engineering": ["Software Engineer", "Senior Software Engineer", "QA Engineer", "DevOps Engineer", "Data Engineer"],
    "Finance": ["Accountant", "Accounts Payable Specialist", "Financial Analyst", "Payroll Specialist", "Controller"],
    "Human Resources": ["HR Generalist", "Recruiter", "HR Business Partner"],
    "Legal": ["Counsel", "Paralegal", "Contracts Manager"],
    "Marketing": ["Marketing Specialist", "Content Writer", "Brand Designer", "Events Coordinator"],
    "IT": ["Systems Administrator", "Identity Engineer", "Helpdesk Analyst", "Network Engineer"],
    "Operations": ["Operations Analyst", "Logistics Coordinator", "Facilities Coordinator", "Executive Assistant"],
    "Customer Support": ["Support Specialist", "Support Engineer", "Customer Success Manager"],
    "Procurement": ["Buyer", "Procurement Specialist", "Vendor Manager"],
}

GIVEN_NAMES = """Aaliyah Adam Adebayo Aditi Ahmed Aiko Alejandro Alex Alice Amara Amelia Ana Andrea Andrew
Anika Anna Arjun Ava Ben Bianca Camila Carlos Charlotte Chen Chloe Chris Daniel David Diego Dmitri Elena
Eli Emily Emma Erik Ethan Fatima Felix Fernanda Finn Gabriel Grace Hana Hannah Harper Hassan Ines Isaac
Isabel Ivan Jack Jakob James Jana Javier Jin Joao Jonas Jordan Jose Julia Kai Kaito Karen Kenji Laila
Laura Lea Leon Liam Lina Lucas Lucia Luis Maya Mei Mia Michael Mina Mohammed Nadia Naomi Nina Noah Olga
Oliver Omar Paula Pedro Priya Rafael Rahul Rania Rosa Ryan Sakura Samuel Sara Sebastian Sofia Sophie
Tariq Theo Tomas Valentina Victor Wei Yara Yusuf Zara Zoe""".split()

SURNAMES = """Abbott Adeyemi Agarwal Alvarez Anderson Bauer Becker Bianchi Brown Campbell Chen Clarke Costa
Cruz Das Dubois Edwards Evans Fernandes Fischer Garcia Gomez Gonzalez Green Gupta Hall Hansen Harris
Hernandez Hoffmann Hughes Ito Jackson Jensen Johnson Jones Kaur Khan Kim Klein Kowalski Kumar Lee Lewis
Lopez Martin Martinez Meyer Miller Moore Morales Muller Murphy Nakamura Nguyen Novak Okafor Oliveira
Olsen Park Patel Pereira Petrov Phillips Ramirez Reyes Richter Roberts Rodriguez Rossi Santos Sato
Schmidt Schneider Shah Silva Singh Smith Suzuki Tanaka Taylor Thomas Thompson Torres Wagner Walker Wang
Watanabe Weber White Williams Wilson Wright Yamamoto Young Zhang""".split()

# (organisation, domain) — fictional partners, suppliers and customers.
PARTNERS = [
    ("Globex Logistics", "globex-logistics.com"),
    ("Initech Consulting", "initech-consulting.com"),
    ("Umbrella Supplies", "umbrellasupplies.net"),
    ("Stark Components", "starkcomponents.com"),
    ("Wayne Freight", "waynefreight.co"),
    ("Acme Industrial", "acme-industrial.com"),
    ("Hooli Cloud Services", "hoolicloud.io"),
    ("Vandelay Imports", "vandelayimports.com"),
    ("Cyberdyne Analytics", "cyberdyne-analytics.com"),
    ("Soylent Foods", "soylentfoods.com"),
    ("Oceanic Travel", "oceanic-travel.com"),
    ("Blue Sun Energy", "bluesunenergy.com"),
    ("Pied Piper Storage", "piedpiper.net"),
    ("Massive Dynamic", "massivedynamic.com"),
]

HOSTED_PREFIXES = ["40.107", "52.100", "209.85", "185.12", "104.47", "66.102", "198.2"]

# (address, display name, ip prefix)
SAAS_SENDERS = [
    ("no-reply@notifications.atlassian-demo.net", "Jira", "18.236"),
    ("noreply@github-notify.example.com", "GitHub", "192.30"),
    ("no-reply@zoom-mail.example.net", "Zoom", "170.114"),
    ("notifications@slack-mail.example.com", "Slack", "54.240"),
    ("noreply@salesforce-mail.example.com", "Salesforce", "136.147"),
    ("dse@docusign-mail.example.net", "DocuSign via Fabrikam Legal", "64.207"),
    ("no-reply@sharepointonline.example.com", "SharePoint Online", "40.107"),
    ("workday@myworkday-mail.example.com", "Workday", "185.12"),
    ("billing@aws-billing.example.com", "AWS Billing", "54.240"),
    ("calendar-notification@calendar.example.org", "Calendar", "209.85"),
]

# (address, display name, bulk complaint level)
NEWSLETTERS = [
    ("news@saasweekly.example.io", "SaaS Weekly", 5),
    ("digest@devtools-digest.example.com", "DevTools Digest", 4),
    ("offers@travelpoints.example.com", "TravelPoints Offers", 7),
    ("hello@officesupplyhub.example.com", "Office Supply Hub", 6),
    ("events@industryevents.example.net", "Industry Events", 5),
    ("promo@megadeals-mail.example.com", "MegaDeals", 8),
    ("newsletter@fintechtimes.example.com", "Fintech Times", 4),
    ("webinars@cloudsummit.example.org", "Cloud Summit Webinars", 6),
]

FREEMAIL = [("gmail.com", "209.85"), ("outlook.com", "40.92"), ("yahoo.com", "98.136"), ("proton.me", "185.70")]

SPAM_WORDS = ["bestdeals", "cryptoprofit", "pharmaplus", "luckywinner", "seoboost", "loanfast",
              "replicawatch", "datinglocal", "casinoroyal", "weightlossnow", "cheapmeds", "giftrewards"]
SPAM_TLDS = ["top", "xyz", "click", "info", "icu", "shop", "buzz", "online"]
SPAM_LOCALS = ["info", "offers", "support", "admin", "winner", "newsletter", "sales", "noreply"]

PUBLIC_FIRST_OCTETS = [5, 23, 31, 37, 45, 62, 77, 80, 85, 91, 103, 109, 113, 141, 154, 176, 178, 185, 188, 193, 195, 212, 213, 217]

# Countries and hosting networks that attackers sign in from.
ATTACKER_ORIGINS = [
    ("NG", "Lagos", "102.89", "AS37148 Globacom"),
    ("RU", "Moscow", "91.243", "AS9123 TimeWeb"),
    ("NL", "Amsterdam", "45.137", "AS9009 M247 Ltd"),
    ("VN", "Hanoi", "103.161", "AS135905 VNPT"),
    ("US", "Clifton", "159.203", "AS14061 DigitalOcean"),
]

# Brands phishing kits imitate, and the lookalike stems generated from them.
BRANDS = [
    ("Microsoft 365", "microsoft"),
    ("DocuSign", "docusign"),
    ("SharePoint", "sharepoint"),
    ("DHL", "dhl"),
    ("Adobe Sign", "adobesign"),
]

PARTNER_SUBJECTS = [
    "Re: delivery schedule for week {n}",
    "Invoice INV-{n4} from {partner}",
    "Updated quote Q-{n4}",
    "Re: contract renewal {year}",
    "Meeting notes: quarterly business review",
    "Re: purchase order PO-{n5}",
    "Shipment {n5} dispatched",
    "Re: pricing for the {product} line",
    "Statement of account - {month}",
    "Re: onboarding documents",
    "Fwd: revised SOW",
    "Re: support ticket #{n5}",
]

SAAS_SUBJECTS = [
    "[JIRA] ({proj}-{n4}) {task}",
    "[GitHub] Pull request #{n4}: {task}",
    "Your Zoom meeting is starting soon",
    "You have {n} new messages in #{channel}",
    "Opportunity {n5} was updated",
    "Completed: Please DocuSign: NDA {partner}",
    "{name} shared a file with you",
    "Timesheet reminder for week {n}",
    "Your AWS invoice is available",
    "Invitation: {task} @ {weekday} {hour}:00",
]

NEWSLETTER_SUBJECTS = [
    "This week: {n} tools every team should try",
    "Last chance: {n}% off ends tonight",
    "Webinar: scaling {product} in {year}",
    "Your monthly digest is here",
    "{n} trends shaping {year}",
    "Exclusive member offer inside",
    "Top stories you missed",
]

SPAM_SUBJECTS = [
    "You have won a ${n4} gift card!!!",
    "Cheap meds without prescription",
    "Make $${n4}/day from home",
    "Re: your loan is approved",
    "Hot singles in {city}",
    "URGENT: claim your prize {n5}",
    "Best replica watches 90% off",
    "Boost your SEO ranking today",
]

INTERNAL_SUBJECTS = [
    "Re: {proj} status update",
    "Agenda for {weekday}'s sync",
    "Draft: {product} launch plan",
    "Re: budget review {quarter}",
    "Fwd: customer escalation #{n5}",
    "Lunch on {weekday}?",
    "Re: hiring plan for {quarter}",
    "Notes from the {proj} retro",
    "Question about the {product} roadmap",
    "Re: travel approval",
    "{quarter} OKRs - please review",
    "Re: Re: {task}",
    "Team offsite logistics",
    "Welcome {name} to the team!",
    "Besprechung am {weekday}",
    "Réunion équipe {quarter}",
]

PERSON_SUBJECTS = [
    "Question about your product",
    "Job application - {title}",
    "Re: our call yesterday",
    "Speaking invitation",
    "Partnership idea",
]

OUTBOUND_SUBJECTS = [
    "Re: delivery schedule for week {n}",
    "Quote for {product}",
    "Re: invoice INV-{n4}",
    "Follow-up from our meeting",
    "Re: contract renewal {year}",
    "Proposal: {product} rollout",
]

PROJECTS = ["ATLAS", "ORION", "HELIX", "NOVA", "ZEPHYR", "TITAN", "LYNX", "APEX"]
PRODUCTS = ["Contoso Cloud", "Horizon", "DataHub", "FleetTrack", "PayFlow", "Insight"]
TASKS = ["Fix login timeout", "Update billing export", "Refactor search index", "Quarterly planning",
         "Migrate reporting DB", "Design review", "Customer onboarding flow", "Release 4.2 checklist"]
CHANNELS = ["general", "sales-team", "eng-platform", "random", "incidents", "marketing"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

ATTACHMENT_NAMES = {
    "partner": [("Invoice_{n4}.pdf", "pdf"), ("Quote_Q{n4}.pdf", "pdf"), ("Contract_{year}.docx", "docx"),
                ("Shipment_{n5}.xlsx", "xlsx")],
    "internal": [("{proj}_status.pptx", "pptx"), ("Budget_{quarter}.xlsx", "xlsx"), ("Notes.docx", "docx"),
                 ("diagram.png", "png")],
    "outbound": [("Proposal_{product}.pdf", "pdf"), ("Quote_{n4}.xlsx", "xlsx")],
}

# Internal URL roots; {domain} is the tenant's primary stem.
LEGIT_URLS = {
    "partner": ["https://portal.{partner_domain}/orders/{n5}", "https://{partner_domain}/support/tickets/{n5}"],
    "saas": ["https://{saas_host}/browse/{proj}-{n4}", "https://{saas_host}/notifications/{n5}"],
    "newsletter": ["https://{news_host}/article/{n5}", "https://click.{news_host}/t/{n5}", "https://{news_host}/unsubscribe"],
    "internal": ["https://{stem}.sharepoint.com/sites/{proj}/Shared%20Documents/{n4}.docx",
                 "https://{stem}-my.sharepoint.com/personal/doc/{n5}"],
    "spam": ["http://{spam_domain}/offer/{n5}", "http://{spam_domain}/win"],
    "person": [],
    "outbound": ["https://www.{stem}.com/products/{n4}"],
}

# Ordinary inbox rules users create (not every rule is malicious).
BENIGN_RULE_NAMES = ["Newsletters", "Jira notifications", "Move calendar replies", "Receipts", "From manager"]
