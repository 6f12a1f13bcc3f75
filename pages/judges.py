import streamlit as st
st.title("judges")
st.info("Not available yet.")
