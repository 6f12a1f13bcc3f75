import streamlit as st
st.title("prune")
st.info("Not available yet.")
