"""Write pool.txt: the bundled pool of short image descriptions (deterministic; no randomness).

    .venv/bin/python -m ccs_core.resources.make_pool        # rewrites ccs_core/resources/pool.txt

Each category's words go through a few phrasings in the style of the paper's spans ("A photo of a
woman", "Image with woven fabric design", "Photo taken in Monument Valley", "A photo with the letter J").
The word at position i uses template i % len(templates) (and a second one for short lists), so phrasing
varies without a random generator. Lines "#: <category>" head each section; texts are deduplicated.
"""
from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).with_name("pool.txt")


def words(s: str) -> list[str]:
    return [w.strip() for w in s.split(",") if w.strip()]


OBJECTS = words("""chair, table, lamp, clock, mirror, vase, teapot, coffee mug, wine glass, bottle, umbrella,
backpack, suitcase, handbag, wallet, key, padlock, candle, book, notebook, pencil, fountain pen, laptop,
keyboard, computer mouse, smartphone, television, radio, camera, telescope, microscope, globe, map, compass,
hourglass, lantern, bicycle helmet, baseball cap, pair of glasses, wristwatch, necklace, ring, crown,
feather, rope, ladder, hammer, screwdriver, wrench, saw, axe, shovel, bucket, watering can, flower pot,
basket, box, envelope, postcard, stamp, coin, banknote, credit card, ticket, trophy, medal, flag, kite,
balloon, teddy bear, doll, toy car, toy train, puzzle, chess board, deck of cards, dice, football, basketball,
tennis racket, skateboard, surfboard, snowboard, ski, fishing rod, tent, sleeping bag, pillow, blanket,
towel, toothbrush, comb, hair dryer, pair of scissors, needle and thread, sewing machine, iron, broom, vacuum cleaner,
refrigerator, oven, microwave, kettle, toaster, frying pan, cooking pot, knife, fork, spoon, pair of chopsticks,
plate, bowl, cutting board, jar, can, shopping cart, bench, fence, gate, door, window, staircase, fireplace,
chandelier, bookshelf, sofa, bed, cradle, wardrobe, piano keyboard, typewriter, gramophone, vinyl record,
pair of headphones, microphone, loudspeaker, traffic light, street lamp, mailbox, fire hydrant, parking meter,
signpost, anchor, steering wheel, tire, engine, robot, drone, satellite dish, solar panel, wind turbine,
light bulb, battery, plug, cable, calculator, abacus, paintbrush, easel, sculpture, statue, fountain, bell""")

ANIMALS = words("""dog, cat, puppy, kitten, horse, pony, donkey, cow, calf, bull, pig, sheep, lamb, goat, chicken,
rooster, duck, goose, turkey, rabbit, hamster, guinea pig, mouse, rat, squirrel, chipmunk, hedgehog, fox,
wolf, bear, polar bear, panda, koala, kangaroo, deer, moose, elk, reindeer, camel, llama, alpaca, giraffe,
zebra, elephant, rhinoceros, hippopotamus, lion, tiger, leopard, cheetah, jaguar, lynx, monkey, gorilla,
chimpanzee, orangutan, lemur, sloth, bat, raccoon, skunk, otter, beaver, seal, sea lion, walrus, dolphin,
whale, shark, octopus, squid, jellyfish, starfish, crab, lobster, shrimp, turtle, tortoise, frog, toad,
lizard, gecko, chameleon, iguana, snake, python, crocodile, alligator, salamander, goldfish, clownfish,
salmon, eagle, hawk, falcon, owl, parrot, macaw, toucan, flamingo, pelican, swan, heron, stork, penguin,
ostrich, peacock, pigeon, dove, crow, raven, sparrow, robin, hummingbird, woodpecker, kingfisher,
prairie grouse, seagull, butterfly, moth, bee, wasp, ant, ladybug, beetle, dragonfly, grasshopper, spider,
scorpion, snail, worm, armadillo, anteater, bison, buffalo, yak, hyena, meerkat, mongoose, porcupine""")

PEOPLE = words("""woman, man, young woman, young man, girl, boy, baby, toddler, teenager, elderly woman, elderly man,
young person, old person, couple, family, mother and child, father and son, grandparents, twins, siblings,
group of friends, crowd, bride, groom, student, tourist, athlete, dancer, musician, soldier, child,
pregnant woman, man with a beard, woman with long hair, bald man, person with glasses, person in a wheelchair,
person wearing a hat, person wearing a mask, person in a uniform""")

PROFESSIONS = words("""doctor, nurse, surgeon, dentist, pharmacist, veterinarian, teacher, professor, scientist,
chemist, biologist, astronaut, pilot, flight attendant, engineer, architect, electrician, plumber, carpenter,
mechanic, construction worker, welder, farmer, fisherman, gardener, florist, chef, cook, baker, butcher,
waiter, bartender, barista, cashier, shopkeeper, salesperson, accountant, banker, lawyer, judge,
police officer, firefighter, paramedic, security guard, detective, journalist, photographer, painter,
sculptor, writer, poet, librarian, actor, singer, guitarist, drummer, violinist, pianist, conductor,
DJ, magician, clown, model, fashion designer, tailor, hairdresser, barber, makeup artist, taxi driver,
bus driver, truck driver, train conductor, sailor, ship captain, lifeguard, coach, referee, mail carrier,
delivery worker, janitor, housekeeper, nanny, social worker, psychologist, programmer, data scientist,
office worker, secretary, receptionist, manager, CEO, politician, priest, monk, nun, animal trainer,
zookeeper, beekeeper, shepherd, miner, lumberjack, blacksmith, potter, jeweler, archaeologist, astronomer""")

COUNTRIES = words("""Andorra, Fiji, Japan, China, India, Nepal, Bhutan, Thailand, Vietnam, Cambodia, Indonesia,
Malaysia, Singapore, the Philippines, South Korea, Mongolia, Kazakhstan, Uzbekistan, Iran, Iraq, Turkey,
Israel, Jordan, Lebanon, Saudi Arabia, Oman, Yemen, the United Arab Emirates, Qatar, Egypt, Morocco,
Algeria, Tunisia, Libya, Sudan, Ethiopia, Kenya, Tanzania, Uganda, Rwanda, Nigeria, Ghana, Senegal, Mali,
Niger, Cameroon, Congo, Angola, Zambia, Zimbabwe, Botswana, Namibia, South Africa, Madagascar, Mozambique,
Mauritius, Seychelles, Iceland, Norway, Sweden, Finland, Denmark, Ireland, the United Kingdom, Scotland,
France, Spain, Portugal, Italy, Greece, Malta, Cyprus, Germany, Austria, Switzerland, Belgium,
the Netherlands, Luxembourg, Poland, Czechia, Slovakia, Hungary, Romania, Bulgaria, Serbia, Croatia,
Slovenia, Bosnia, Montenegro, Albania, Ukraine, Belarus, Lithuania, Latvia, Estonia, Russia, Georgia,
Armenia, Azerbaijan, Canada, the United States, Mexico, Guatemala, Belize, Honduras, Costa Rica, Panama,
Cuba, Jamaica, Haiti, the Dominican Republic, Puerto Rico, the Bahamas, Barbados, Colombia, Venezuela,
Ecuador, Peru, Bolivia, Brazil, Paraguay, Uruguay, Argentina, Chile, Australia, New Zealand, Papua New Guinea,
Samoa, Tonga, Vanuatu, the Maldives, Sri Lanka, Bangladesh, Pakistan, Afghanistan, Laos, Myanmar""")

PLACES = words("""Monument Valley, the Grand Canyon, Yosemite, Yellowstone, the Sahara desert, the Amazon rainforest,
the Alps, the Himalayas, the Andes, Patagonia, the Scottish Highlands, the Norwegian fjords, Iceland's
glaciers, the Great Barrier Reef, the Serengeti, Machu Picchu, Petra, the Pyramids of Giza, the Taj Mahal,
Angkor Wat, the Great Wall, Times Square, Central Park, the Golden Gate Bridge, the Eiffel Tower,
the Colosseum, Venice, Santorini, Paris, London, New York, Tokyo, Kyoto, Hong Kong, Shanghai, Dubai,
Istanbul, Marrakech, Cairo, Rio de Janeiro, Buenos Aires, Havana, Mexico City, Barcelona, Amsterdam, Berlin,
Prague, Vienna, Moscow, Sydney, the Sydney Opera House, Hawaii, the Caribbean, Bali, the Dead Sea,
Death Valley, Niagara Falls, Victoria Falls, Mount Fuji, Mount Everest, Kilimanjaro, the Dolomites,
Tuscany, Provence, Lapland, Siberia, Antarctica, the Arctic, the Galapagos Islands, Las Vegas, Hollywood,
Chicago, San Francisco, Los Angeles, Seoul, Bangkok, Mumbai, Jerusalem, Athens, Rome, Lisbon, Stockholm""")

COLOURS = words("""red, orange, yellow, green, blue, purple, pink, brown, black, white, gray, beige, turquoise,
teal, navy blue, sky blue, lime green, olive green, emerald green, mint green, crimson, scarlet, maroon,
burgundy, coral, salmon pink, peach, gold, silver, bronze, copper, ivory, cream, lavender, violet, magenta,
indigo, amber, ochre, rust, charcoal, pastel, neon, sepia""")

MATERIALS = words("""wood, carved wood, driftwood, bamboo, marble, granite, slate, sandstone, concrete, brick,
cobblestone, glass, stained glass, shattered glass, mirror glass, metal, rusty metal, brushed steel,
polished chrome, gold leaf, copper, aluminum foil, plastic, rubber, leather, suede, fur, wool, knitted wool,
felt, cotton, linen, silk, satin, velvet, denim, lace, woven fabric, tweed, burlap, canvas, paper,
crumpled paper, cardboard, clay, porcelain, ceramic tiles, mosaic tiles, terracotta, wax, ice, snow, sand,
pebbles, moss, tree bark, feathers, scales, honeycomb, sponge, cork, rattan, wicker, rope, chain mail""")

TEXTURES = words("""rough, smooth, glossy, matte, fluffy, furry, fuzzy, bumpy, wrinkled, cracked, peeling, rusty,
grainy, silky, shiny, metallic, translucent, transparent, sparkling, glittery, wet, frosted, dusty, muddy,
sticky, spiky, ribbed, quilted, embossed, perforated, corrugated, porous, velvety, waxy, crystalline""")

PATTERNS = words("""striped, polka dot, checkered, plaid, tartan, houndstooth, paisley, floral, zigzag, chevron,
herringbone, camouflage, leopard print, zebra print, tiger stripe, snakeskin, geometric, hexagonal, spiral,
swirling, concentric circles, grid, honeycomb, tie-dye, marbled, mosaic, argyle, damask, ikat, tribal""")

ART_STYLES = words("""impressionist, expressionist, cubist, surrealist, abstract, pop art, art nouveau, art deco,
baroque, renaissance, rococo, romanticist, realist, hyperrealist, minimalist, pointillist, fauvist,
futurist, constructivist, Bauhaus, ukiyo-e, Chinese ink, watercolor, oil, acrylic, gouache,
pastel, charcoal sketch, pencil sketch, pen and ink, woodcut, linocut, etching, lithograph,
screen print, mosaic, fresco, stained glass, graffiti, street art, comic book, manga, anime, cartoon,
pixel art, low poly, vaporwave, steampunk, cyberpunk, psychedelic, folk art, aboriginal dot,
Byzantine icon, Gothic, medieval illuminated manuscript, children's drawing, collage, origami, papercut""")

PHOTO_STYLES = words("""black and white, sepia toned, high contrast, low key, high key, soft focus, shallow depth of
field, bokeh, long exposure, motion blur, macro, close-up, wide angle, fisheye, telephoto, panoramic,
aerial, drone, overhead, low angle, bird's eye view, worm's eye view, tilt-shift, infrared, thermal,
X-ray, night vision, underwater, double exposure, silhouette, backlit, golden hour, blue hour,
studio lit, flash, candid, street, documentary, fashion, editorial, product, food, wildlife, astrophotography,
polaroid, film grain, vintage, overexposed, underexposed, blurry, out of focus, grainy, HDR, selfie,
security camera, satellite, scanned, 3D rendered, CGI, screenshot, stock""")

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
NUMBERS = [str(i) for i in range(0, 21)] + ["42", "50", "99", "100", "365", "1000", "2024"]
WORDS_WRITTEN = words("""STOP, EXIT, OPEN, SALE, LOVE, HELLO, HOTEL, TAXI, POLICE, DANGER, WELCOME, COFFEE""")

COUNT_NOUNS = [("person", "people"), ("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("car", "cars"),
               ("apple", "apples"), ("child", "children"), ("chair", "chairs"), ("flower", "flowers"),
               ("ball", "balls"), ("horse", "horses"), ("boat", "boats"), ("tree", "trees"),
               ("candle", "candles"), ("cup", "cups"), ("window", "windows")]
COUNTS = ["two", "three", "four", "five", "six", "seven", "eight", "many"]

SCENES = words("""a busy train station, an empty airport terminal, a crowded market, a quiet library, a school
classroom, a hospital room, an operating theater, a laboratory, an office cubicle, a conference room,
a factory floor, a warehouse, a construction site, a farm field, a barn, a vineyard, an orchard, a greenhouse,
a garden, a city park, a playground, a football stadium, a basketball court, a tennis court, a swimming pool,
a gym, a boxing ring, a race track, a ski slope, a beach, a harbor, a fishing village, a lighthouse,
a mountain trail, a forest path, a jungle, a desert road, a highway at night, a traffic jam, a parking lot,
a gas station, a subway car, a bus stop, a shopping mall, a supermarket aisle, a bakery, a cafe,
a restaurant kitchen, a bar, a nightclub, a concert, a theater stage, a museum gallery, an art studio,
a church interior, a mosque, a temple, a cathedral, a castle, a palace, ruins, a cemetery, a wedding,
a birthday party, a graduation ceremony, a parade, a protest, a street festival, a carnival, a circus,
a zoo, an aquarium, a living room, a kitchen, a bedroom, a bathroom, a messy desk, a cozy attic,
a dark basement, a rooftop, a balcony, a courtyard, a suburban street, a skyscraper skyline, a slum,
a village square, a campsite, a log cabin, a space station, a battlefield, a shipwreck, a cave""")

WEATHER = words("""a sunny day, a cloudy sky, an overcast day, light rain, a heavy rainstorm, a thunderstorm,
lightning, a rainbow, fog, mist, a snowstorm, falling snow, a blizzard, hail, a windy day, a tornado,
a hurricane, a sandstorm, a heat wave, frost, icicles, dew drops, a clear night sky, a starry night,
a full moon, a sunrise, a sunset, dusk, twilight, midday sun, an aurora, a solar eclipse""")

SEASONS = words("""spring, summer, autumn, winter, the rainy season, the dry season""")

EMOTIONS = words("""happy, sad, angry, surprised, scared, disgusted, calm, excited, bored, tired, confused,
proud, shy, embarrassed, anxious, relaxed, joyful, lonely, thoughtful, playful, serious, cheerful, tearful,
gloomy, grumpy, worried, hopeful, determined, contemplative, peaceful""")

ACTIONS = words("""running, walking, jumping, swimming, diving, climbing, cycling, skiing, surfing, skating,
dancing, singing, playing guitar, playing piano, painting, drawing, reading, writing, typing, cooking,
eating, drinking coffee, sleeping, yawning, stretching, doing yoga, meditating, lifting weights, boxing,
playing football, playing chess, fishing, gardening, hiking, camping, shopping, driving, talking on the phone,
taking a selfie, hugging, kissing, shaking hands, waving, pointing, clapping, praying, laughing, crying,
arguing, teaching, studying, working on a laptop, repairing a car, sewing, knitting, washing dishes,
cleaning, walking a dog, feeding birds, riding a horse""")

FOOD = words("""pizza, pasta, spaghetti, lasagna, hamburger, hot dog, sandwich, taco, burrito, sushi, ramen,
dumplings, fried rice, curry, steak, roast chicken, fried chicken, fish and chips, salad, soup, omelette,
pancakes, waffles, croissant, bread, bagel, donut, cupcake, birthday cake, chocolate, ice cream, cookies,
pie, cheese, grapes, strawberries, blueberries, watermelon, pineapple, banana, apple, orange, lemon,
mango, avocado, tomato, carrot, broccoli, corn, potatoes, mushrooms, eggs, rice, noodles, popcorn,
french fries, kebab, paella, dim sum, tea, coffee, wine, beer, cocktail, smoothie, milk, honey""")

VEHICLES = words("""car, sports car, vintage car, taxi, bus, school bus, double-decker bus, truck, fire truck,
ambulance, police car, tractor, bulldozer, motorcycle, scooter, bicycle, tricycle, train, steam locomotive,
high-speed train, tram, subway train, airplane, jet fighter, helicopter, hot air balloon, rocket,
space shuttle, sailboat, yacht, canoe, kayak, rowing boat, ferry, cruise ship, cargo ship, submarine,
gondola, horse-drawn carriage, rickshaw, camper van, pickup truck, limousine, go-kart, snowmobile""")

PLANTS = words("""a rose, a tulip, a sunflower, a daisy, a lily, an orchid, a lotus flower, a lavender field,
cherry blossoms, a poppy, a dandelion, a cactus, a succulent, a fern, moss, ivy, bamboo stalks, a palm tree,
an oak tree, a pine tree, a birch tree, a willow, maple leaves, a baobab tree, a bonsai tree, a mushroom,
a wheat field, a rice paddy, a cornfield, tall grass, reeds, seaweed, a water lily, a hedge, autumn leaves,
pine cones, acorns, wild berries, blossoming springtime blooms, intertwined tree branches, a fallen log,
a tree stump, a bouquet of flowers, a potted plant, ferns in a forest""")

NATURE = words("""a meadow, a waterfall, a river, a stream, a lake, a pond, a swamp, an ocean, waves, a coral
reef, a cliff, a canyon, a valley, a hill, a mountain peak, a volcano, a glacier, an iceberg, a sand dune,
a desert, a savanna, a tundra, a rainforest, a pine forest, a bamboo forest, a cave, a rocky shore, an island,
a beach with palm trees, a field of flowers, flowing water bodies, a smoky plume, a swirling eddy,
awe-inspiring sky, dramatic clouds, a wildfire, lava, hot springs, a geyser, a frozen lake""")

BUILDINGS = words("""skyscraper, house, cottage, mansion, apartment block, hut, igloo, tent, castle, palace,
tower, lighthouse, windmill, barn, church, cathedral, mosque, temple, pagoda, synagogue, bridge, dam,
tunnel, stadium, airport, train station, factory, power plant, greenhouse, treehouse, ruins, pyramid,
log cabin, houseboat, gazebo, pier, monument, arch, dome, bell tower""")

SPORTS = words("""football, soccer, basketball, baseball, tennis, golf, volleyball, rugby, cricket, hockey,
ice hockey, boxing, wrestling, judo, karate, fencing, archery, gymnastics, swimming, diving, surfing,
sailing, rowing, cycling, marathon running, skiing, snowboarding, figure skating, skateboarding, rock climbing,
horse racing, motorsport, Formula 1, table tennis, badminton, bowling, billiards, darts, weightlifting""")

INSTRUMENTS = words("""guitar, electric guitar, violin, cello, double bass, harp, piano, grand piano, organ,
accordion, flute, clarinet, saxophone, trumpet, trombone, tuba, French horn, drums, drum kit, xylophone,
harmonica, banjo, ukulele, sitar, bagpipes, tambourine, maracas, synthesizer""")

BODY = words("""a hand, a leg, a foot, an eye, an ear, a nose, lips, teeth, a tongue, hair, a beard, a face,
fingers, a fist, an arm, a shoulder, a knee, a back, a belly, a tattoo, freckles, wrinkles, a skeleton,
a skull, a heart, a brain, bones, footprints, a handprint, graceful wings in motion""")

CLOTHING = words("""dress, wedding dress, suit, tuxedo, pair of jeans, T-shirt, hoodie, sweater, jacket, leather jacket,
raincoat, fur coat, scarf, gloves, hat, cowboy hat, top hat, beanie, helmet, pair of sneakers, pair of high heels, pair of boots,
pair of sandals, kimono, sari, kilt, hijab, turban, uniform, swimsuit, apron, lab coat, tie, bow tie,
pair of sunglasses, mask, costume, suit of armor, backpack""")

SHAPES = words("""circle, square, triangle, rectangle, star, heart, hexagon, oval, diamond, cross, arrow, crescent,
spiral, cube, sphere, cylinder, cone, pyramid, ring, wave""")

LIGHTING = words("""neon lights, candlelight, firelight, moonlight, sunlight through trees, harsh shadows,
soft shadows, spotlight, stage lights, fairy lights, Christmas lights, street lights at night, nighttime
illumination, lens flare, reflections on water, a dark room, a bright white room, colorful lights,
a glowing screen, fireworks""")

FREE = words("""Playful siblings, Serene beach sunset, Urban street fashion, Eclectic street scenes, Inviting reading
nook, Minimalist white backdrop, Contemplative monochrome portrait, colorful procession, thrilling motorsport
race, detailed reptile close-up, Majestic animal, Photo of a furry animal, Intricate wood carving,
Vibrant city nightlife, Cozy winter cabin, Rustic farmhouse kitchen, Ancient stone ruins, Futuristic city
skyline, Abandoned industrial building, Lush tropical vegetation, Tranquil zen garden, Bustling night market,
Charming cobblestone alley, Quaint seaside village, Misty mountain morning, Dramatic stormy seascape,
Golden wheat fields, Snow-capped peaks, Colorful hot air balloons, Elegant ballroom dance, Joyful
children playing, Lonely figure on a bench, Crowded subway platform, Vintage car show, Steaming bowl of
noodles, Freshly baked bread, Colorful spices at a market, Handwritten letter, Old family photograph,
Scientific diagram, Hand-drawn map, Infographic with charts, A page of text, A newspaper front page, A poster
with bold typography, A logo on a white background, A QR code, A barcode, A road sign, A license plate,
A chalkboard with equations, A calendar page, A musical score, A shopping receipt, A product label,
A meme with text, A movie poster, A book cover, An album cover, A video game screenshot, A medical scan,
A microscope slide, A galaxy in deep space, The surface of the moon, Planet Earth from space, A satellite
image of a city, A blueprint, A tattoo design, A mandala, A kaleidoscope pattern, A jigsaw puzzle,
A chess match, A game of cards, Dominoes falling, A house of cards, A sandcastle, A snowman, Footprints in
the sand, A message in a bottle, A paper boat, A lit match, A melting ice cube, Soap bubbles, Spilled
milk, A cup of tea with steam, A rainy window, A foggy windshield, A cracked phone screen, A broken vase,
Tangled cables, A pile of laundry, A stack of books, A messy kitchen sink, A clean tidy room, A rusty
old gate, A freshly painted wall, Peeling paint, Graffiti on a brick wall, A neon sign, A red carpet event,
A press conference, A royal ceremony, A military parade, A religious procession, A traditional dance,
A tea ceremony, A family dinner, A picnic in the park, A road trip, A camping trip, A wedding kiss,
A first day of school, A hospital birth, A funeral, A retirement party, A job interview, A classroom
exam, A science fair, A robot assembly line, A server room, A control room, A cockpit view, A view from
a train window, A view through a keyhole, A reflection in a puddle, A shadow on a wall, An empty chair,
An open door, A long corridor, A spiral staircase, A maze, A bridge in fog, Image with woven fabric design,
Image with shattered glass reflections, Photo taken in the Italian pizzerias, Closeup of textured synthetic
fabric, Image with leopard print patterns, Image showing prairie grouse, An image of a Animal Trainer""")


IRREGULAR = {"sheep": "sheep", "deer": "deer", "moose": "moose", "elk": "elk", "reindeer": "reindeer",
             "bison": "bison", "buffalo": "buffalo", "salmon": "salmon", "goldfish": "goldfish",
             "clownfish": "clownfish", "jellyfish": "jellyfish", "starfish": "starfish", "shrimp": "shrimp",
             "squid": "squid", "prairie grouse": "prairie grouse", "mouse": "mice", "goose": "geese",
             "wolf": "wolves", "calf": "calves", "octopus": "octopuses", "person": "people"}


def plural(noun: str) -> str:
    if noun in IRREGULAR:
        return IRREGULAR[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def article(noun: str) -> str:
    low = noun.lower()
    vowel = low[0] in "aeiou" and not low.startswith(("uni", "uk", "eu", "one", "use"))
    return ("an " if vowel or low.startswith(("hour", "honest")) else "a ") + noun


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def sections() -> list[tuple[str, list[str]]]:
    def use(items, templates, k=1):
        out = []
        for i, w in enumerate(items):
            for j in range(k):
                out.append(templates[(i + j) % len(templates)].format(
                    w=w, W=cap(w), a=article(w), A=cap(article(w)), p=plural(w)))
        return out

    counts = [f"Image with {n} {pl}" if n != "one" else f"Image with one {sg}"
              for i, (sg, pl) in enumerate(COUNT_NOUNS) for n in COUNTS[i % 3:i % 3 + 6]]
    counts += [f"A photo of a single {sg}" for sg, _ in COUNT_NOUNS]
    return [
        ("objects", use(OBJECTS, ["A photo of {a}", "Image with {a}", "Close-up of {a}",
                                  "A still life with {a}", "An old {w}"], 2)),
        ("animals", use(ANIMALS, ["Image with {a}", "A photo of {a}", "Image showing {a}",
                                  "{A} in the wild", "A group of {p}", "A close-up of {a}'s face"], 2)),
        ("people", use(PEOPLE, ["A photo of {a}", "Portrait of {a}", "Image with {a}",
                                "{A} smiling at the camera"], 2)),
        ("professions", use(PROFESSIONS, ["An image of {a}", "A photo of {a} at work",
                                          "Portrait of {a}", "{A} in uniform"], 2)),
        ("countries", use(COUNTRIES, ["An image of {w}", "Photo taken in {w}", "A street in {w}",
                                      "Traditional architecture of {w}", "The flag of {w}"], 2)),
        ("places", use(PLACES, ["Photo taken in {w}", "A view of {w}", "Tourists visiting {w}"], 2)),
        ("colours", use(COLOURS, ["{A} background", "Image with {w} tones", "{A} object",
                                  "Mostly {w} colors", "{A} wall"], 3)),
        ("materials", use(MATERIALS, ["Image with {w} texture", "Closeup of {w}", "An object made of {w}",
                                      "{A} surface"], 2)),
        ("textures", use(TEXTURES, ["{A} surface", "Closeup of a {w} texture", "Something {w}"], 2)),
        ("patterns", use(PATTERNS, ["Image with {w} patterns", "{A} fabric", "{A} design"], 2)),
        ("art styles", use(ART_STYLES, ["{A} painting", "Artwork in {w} style", "{A} portrait",
                                        "{A} landscape"], 2)),
        ("photo styles", use(PHOTO_STYLES, ["{A} photo", "{A} shot of a city", "{A} portrait",
                                            "{A} image"], 2)),
        ("letters", [f"A photo with the letter {c}" for c in LETTERS]
         + [f"The letter {c} written on a wall" for c in LETTERS]
         + [f"A lowercase letter {c.lower()}" for c in LETTERS]),
        ("numbers", [f"An image with the number {n}" for n in NUMBERS]
         + [f"The digit {n} on a sign" for n in NUMBERS[:10]]
         + [f"A sign that says {w}" for w in WORDS_WRITTEN]
         + ["Handwritten text", "Printed text in a foreign language", "Chinese characters",
            "Arabic script", "Cyrillic letters", "Roman numerals", "A clock face showing the time"]),
        ("counts", counts),
        ("scenes", use(SCENES, ["{W}", "A photo of {w}", "{W} with people"], 2)),
        ("weather", use(WEATHER, ["{W}", "{W} in the mountains", "{W} over the city"], 2)
         + [f"A landscape in {s}" for s in SEASONS] + [f"A street in {s}" for s in SEASONS]),
        ("emotions", use(EMOTIONS, ["{A} face", "{A} person", "{A} child",
                                    "A portrait of someone looking {w}"], 2)),
        ("actions", use(ACTIONS, ["A person {w}", "A woman {w}", "A man {w}", "Children {w}"], 2)),
        ("food", use(FOOD, ["A photo of {w}", "A plate of {w}", "Fresh {w}", "Close-up of {w}"], 2)
         + ["A photo of food", "A photo of a meal", "A table full of food"]),
        ("vehicles", use(VEHICLES, ["A photo of {a}", "{A} on the road", "An old {w}",
                                    "A red {w}"], 2)),
        ("plants", use(PLANTS, ["Image with {w}", "A photo of {w}", "Close-up of {w}"], 2)),
        ("nature", use(NATURE, ["{W}", "A photo of {w}", "{W} at sunset"], 2)),
        ("buildings", use(BUILDINGS, ["A photo of {a}", "{A} at night", "An old {w}", "A modern {w}"], 2)),
        ("sports", use(SPORTS, ["{A} match", "People playing {w}", "{A} player in action",
                                "Equipment for {w}"], 2)),
        ("instruments", use(INSTRUMENTS, ["A photo of {a}", "A person playing the {w}",
                                          "Close-up of {a}"], 2)),
        ("body parts", use(BODY, ["{W}", "A close-up of {w}", "A photo of {w}"], 1)),
        ("clothing", use(CLOTHING, ["A person wearing {a}", "A photo of {a}", "{A} in a shop window"], 2)),
        ("shapes", use(SHAPES, ["{A} shape", "A drawing of {a}", "Objects arranged in a {w}"], 2)),
        ("lighting", use(LIGHTING, ["{W}", "A room lit by {w}", "A portrait with {w}"], 2)),
        ("free", FREE),
    ]


def build() -> list[str]:
    lines, seen = ["# CCS Explorer bundled pool of image descriptions (generated by make_pool.py).",
                   "# One description per line; '#:' lines name the section (used as tags)."], set()
    for name, texts in sections():
        lines.append(f"#: {name}")
        for t in texts:
            t = " ".join(t.split())
            t = cap(t)
            if t.lower() not in seen:
                seen.add(t.lower())
                lines.append(t)
    return lines


def main() -> None:
    lines = build()
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {sum(not l.startswith('#') for l in lines)} descriptions to {OUT}")


if __name__ == "__main__":
    main()
